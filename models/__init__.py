"""Shapes shared by workflows, activities and the starter.

Everything here is pure (no I/O) so that workflow code can import it inside Temporal's sandbox.
Field names are DataSync's (botocore `datasync` 2018-11-09) wherever the API defines them.
"""
