import io
from collections.abc import Mapping
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

# The key under which the parser leaves, in the request's parser_context, the text of a body it
# could not parse: the browsable API's Raw data box shows it again (core/renderers.py).
UNPARSED_JSON = "unparsed_json"


class SafeJSONParser(JSONParser):
    """DRF's JSON parser, with nesting too deep for Python's decoder answered as 400, not 500,
    and the text of a body that does not parse kept for the page that answers it."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None) -> Any:
        # DRF's parser reads the whole body before decoding it too; the size limits bound it.
        body = stream.read()
        try:
            return super().parse(io.BytesIO(body), media_type, parser_context)
        except (ParseError, RecursionError) as error:
            if isinstance(parser_context, dict):
                parser_context[UNPARSED_JSON] = body.decode("utf-8", errors="replace")
            if isinstance(error, RecursionError):
                raise ParseError("JSON parse error - nested too deeply.") from None
            raise
