"""Submission and the REST API: how work comes in and how a client reads it back.

- ``views``: the DRF views of ``/jobs/...`` (thin: validate, call one service or selector).
- ``serializers``: request validation (400s naming each field) and the job's JSON shape.
- ``submit``: storing a job or a graph in one transaction; adding edges.
- ``selectors``: what a user may read, filtered and ordered.
- ``parsers``, ``errors``, ``urls``: strict JSON bodies, the error format, the seed's paths.
"""
