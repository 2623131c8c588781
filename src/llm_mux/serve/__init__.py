"""``llm-mux serve``: every role and backend behind the OpenAI and Anthropic HTTP APIs.

A plain ASGI application (:mod:`.app`) over the same core as ``run`` and ``ask``; uvicorn
runs it (:mod:`.server`), but any ASGI server can. Imported only by the ``serve`` command.
"""
