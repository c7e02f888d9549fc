"""``posedistill serve``: the HTTP API and web page (FastAPI on uvicorn)."""

from __future__ import annotations

from pathlib import Path

import click

from ..inference.predictor import Predictor
from ..inference.refine import REFINE_CHOICES


#: Memory, connection and slow-client limits: (option, ServeConfig field, type, default, help); the defaults are
#: ServeConfig's (not imported here: that would load FastAPI for every posedistill command).
_LIMITS = (
    ("--max-side", "max_side", int, 2048,
     "Photos are decoded at most this many pixels on their long side (answers stay in the photo's own pixels)."),
    ("--max-decoded-megapixels", "max_decoded_megapixels", float, 100.0,
     "Decoded pixels in flight (decoding, queued, running) at most; more requests are answered 503."),
    ("--max-connections", "max_connections", int, 64, "Connections and requests at once; more are answered 503."),
    ("--header-timeout", "header_timeout_s", float, 10.0,
     "Seconds for a connection to send its request line and headers."),
    ("--upload-timeout", "upload_timeout_s", float, 30.0, "Seconds for the whole request body to arrive (else 408)."),
    ("--keep-alive", "keep_alive_s", float, 5.0, "Seconds an idle keep-alive connection stays open."),
)


def _with_limits(fn):
    for option, field, kind, default, text in reversed(_LIMITS):
        fn = click.option(option, field, type=kind, default=default, show_default=True, help=text)(fn)
    return fn


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: all).")
@click.option("--port", type=int, default=8000, show_default=True)
@click.option("--weights", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Checkpoint (.pt) or ONNX model (default: the shipped student of --model).")
@click.option("--model", default=None, metavar="NAME",
              help="A shipped student: tiny (fastest) or base (more accurate); default: the package's default "
                   "(docs/model_card.md). A shipped student runs as its ONNX export unless --backend torch.")
@click.option("--backend", type=click.Choice(["torch", "onnx"]), default=None)
@click.option("--threads", type=int, default=None, help="Intra-op threads of the network.")
@click.option("--locate", type=click.Choice(["auto", "finder", "pose", "hog", "both"]), default="auto", show_default=True,
              help="How to find the person in a request without a box (as in predict).")
@click.option("--flip", is_flag=True,
              help="Flip test by default (a request's flip=1 / flip=0 chooses for itself): more accurate, twice "
                   "the network time.")
@click.option("--refine", type=click.Choice(list(REFINE_CHOICES)), default="auto", show_default=True,
              help="A request's box: crop once more on the box of the person's predicted joints when they disagree "
                   "(auto), always (on) or never (off), by default (a request's refine=auto/1/0 chooses for "
                   "itself).")
@click.option("--max-batch", type=int, default=8, show_default=True, help="Requests per forward pass at most.")
@click.option("--max-wait-ms", type=float, default=5.0, show_default=True,
              help="How long the first request of a batch waits for others.")
@click.option("--queue-size", type=int, default=32, show_default=True,
              help="Requests waiting at most; more are answered 503.")
@click.option("--max-upload-mb", type=float, default=10.0, show_default=True, help="Largest upload accepted.")
@click.option("--max-megapixels", type=float, default=40.0, show_default=True,
              help="Largest image (declared in its header) accepted.")
@_with_limits
def serve(host: str, port: int, weights: Path | None, model: str | None, backend: str | None, threads: int | None,
          locate: str, flip: bool, refine: str, max_batch: int, max_wait_ms: float, queue_size: int,
          max_upload_mb: float, max_megapixels: float,
          **limits: float) -> None:
    """Serve POST /predict (image body or multipart field 'image', optional ?bbox=x,y,w,h, ?flip=1/0 and
    ?refine=auto/1/0), GET
    /health and a web page at / where a dropped photo (or the webcam) gets its skeleton drawn."""
    from ..errors import ConfigError
    from ..serve import ServeConfig, create_app
    from ..serve.server import run_server

    if (min(max_batch, queue_size) < 1 or min(max_upload_mb, max_megapixels, *limits.values()) <= 0
            or limits["max_side"] < 64 or not 0 < port < 65536):
        raise ConfigError("--max-batch, --queue-size >= 1, --max-side >= 64, the other limits and timeouts > 0 and "
                          "a port in 1-65535 are required")
    predictor = Predictor(weights, model=model, backend=backend, locate=locate, flip=flip,
                          refine=REFINE_CHOICES[refine], threads=threads)
    config = ServeConfig(max_batch=max_batch, max_wait_ms=max_wait_ms, queue_size=queue_size,
                         max_upload_bytes=int(max_upload_mb * 1024 * 1024),
                         max_pixels=int(max_megapixels * 1e6), **limits)
    app = create_app(predictor, config=config)
    click.echo(f"posedistill serve: http://{host}:{port}/ (weights {predictor.network.weights.name}, "
               f"batch <= {max_batch}, queue <= {queue_size}, connections <= {config.max_connections})", err=True)
    run_server(app, host=host, port=port, config=config)
