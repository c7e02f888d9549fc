"""Inference: the :class:`~posedistill.inference.predictor.Predictor` and what surrounds it (input sources, person
finding, tracking, the file pipeline, drawing, int8 calibration crops). Import from the modules themselves."""
