"""Model cost and latency: profiling (params, MACs, latency) and the teacher-vs-student benchmark."""
