"""What the pipeline is measured against: the read limit, a plain script, and the original projects' way."""
