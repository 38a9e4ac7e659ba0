"""The official openai Python SDK against the gateway (FakeGemini upstream).

Run by gatewayd's integration test `sdk::openai_python_sdk`, which sets GATEWAY_URL and GATEWAY_TOKEN.
"""

import json
import os
import unittest

import openai

URL = os.environ["GATEWAY_URL"]
TOKEN = os.environ["GATEWAY_TOKEN"]
client = openai.OpenAI(base_url=URL + "/v1", api_key=TOKEN, max_retries=0)
MODEL = "gemini-2.5-flash"
TOOLS = [{
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                       "additionalProperties": False},
    },
}]


class Chat(unittest.TestCase):
    def test_chat(self):
        r = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hello"}], temperature=0.1)
        self.assertEqual(r.choices[0].message.content, "Hello from the fake.")
        self.assertEqual(r.choices[0].finish_reason, "stop")
        self.assertEqual(r.model, MODEL)
        self.assertEqual((r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens), (7, 5, 12))

    def test_stream_with_usage(self):
        chunks = list(client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Hello"}], stream=True,
            stream_options={"include_usage": True}))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        self.assertEqual(text, "Hello there")
        self.assertEqual(chunks[0].choices[0].delta.role, "assistant")
        self.assertIn("stop", [c.choices[0].finish_reason for c in chunks if c.choices])
        self.assertEqual(chunks[-1].usage.prompt_tokens, 7)

    def test_tools_round_trip(self):
        messages = [{"role": "user", "content": "Weather in Paris?"}]
        r = client.chat.completions.create(model="gemini-3-pro", messages=messages, tools=TOOLS, tool_choice="auto")
        message = r.choices[0].message
        self.assertEqual(r.choices[0].finish_reason, "tool_calls")
        call = message.tool_calls[0]
        self.assertEqual(call.function.name, "get_weather")
        self.assertEqual(json.loads(call.function.arguments), {"city": "Paris"})
        # The SDK's own message object goes back as the assistant turn, as agents do.
        messages.append(message)
        messages.append({"role": "tool", "tool_call_id": call.id, "content": json.dumps({"temp_c": 21})})
        r = client.chat.completions.create(model="gemini-3-pro", messages=messages, tools=TOOLS)
        self.assertEqual(r.choices[0].message.content, "It is 21 degrees in Paris.")
        self.assertEqual(r.choices[0].finish_reason, "stop")

    def test_forced_tool_choice(self):
        r = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}], tools=TOOLS,
                                           tool_choice={"type": "function", "function": {"name": "get_weather"}})
        self.assertEqual(r.choices[0].message.tool_calls[0].function.name, "get_weather")

    def test_json_mode(self):
        r = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Answer?"}],
                                           response_format={"type": "json_object"})
        self.assertEqual(json.loads(r.choices[0].message.content), {"answer": 42})
        schema = {"type": "object", "properties": {"answer": {"type": "integer"}}, "required": ["answer"]}
        r = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Answer?"}],
                                           response_format={"type": "json_schema",
                                                            "json_schema": {"name": "a", "schema": schema}})
        self.assertEqual(json.loads(r.choices[0].message.content)["answer"], 42)


class Embeddings(unittest.TestCase):
    def test_embeddings_default_base64(self):
        r = client.embeddings.create(model="text-embedding-004", input=["a", "b"])
        self.assertEqual(len(r.data), 2)
        self.assertEqual(list(r.data[1].embedding), [1.0, 0.5, 0.25])
        self.assertEqual(r.usage.prompt_tokens, 2)

    def test_embeddings_float(self):
        r = client.embeddings.create(model="text-embedding-004", input="a", encoding_format="float", dimensions=3)
        self.assertEqual(r.data[0].embedding, [0.0, 0.5, 0.25])


class Models(unittest.TestCase):
    def test_list_and_retrieve(self):
        ids = [m.id for m in client.models.list()]
        self.assertIn("gemini-2.5-flash", ids)
        self.assertIn("gemini-2.5-flash-search", ids)
        self.assertNotIn("gemini-2.5-flash-lite", ids)
        self.assertEqual(client.models.retrieve("gemini-2.5-pro").id, "gemini-2.5-pro")


class Errors(unittest.TestCase):
    def test_authentication_error(self):
        bad = openai.OpenAI(base_url=URL + "/v1", api_key="wrong-token", max_retries=0)
        with self.assertRaises(openai.AuthenticationError):
            bad.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}])

    def test_not_found_error(self):
        with self.assertRaises(openai.NotFoundError):
            client.chat.completions.create(model="gemini-2.5-flash-lite", messages=[{"role": "user", "content": "x"}])

    def test_bad_request_error_names_the_field(self):
        with self.assertRaises(openai.BadRequestError) as ctx:
            client.chat.completions.create(model=MODEL, messages=[])
        self.assertIn("messages", str(ctx.exception))

    def test_rate_limit_error(self):
        with self.assertRaises(openai.RateLimitError) as ctx:
            client.chat.completions.create(model="gemini-2.5-flash-exhausted", messages=[{"role": "user", "content": "x"}])
        self.assertIsNotNone(ctx.exception.response.headers.get("retry-after"))



class Images(unittest.TestCase):
    def test_imagen_through_images_generate(self):
        import base64

        r = client.images.generate(model="imagen-4.0-generate-001", prompt="a cat", n=2, size="1792x1024",
                                   response_format="b64_json")
        self.assertEqual(len(r.data), 2)
        self.assertTrue(base64.b64decode(r.data[0].b64_json).startswith(b"\x89PNG"))

    def test_a_gemini_image_model(self):
        r = client.images.generate(model="gemini-2.5-flash-image", prompt="a cat")
        self.assertEqual(r.data[0].revised_prompt, "A cat, as asked.")

    def test_url_is_refused_naming_what_works(self):
        with self.assertRaises(openai.BadRequestError) as ctx:
            client.images.generate(model="imagen-4.0-generate-001", prompt="a cat", response_format="url")
        self.assertIn("b64_json", str(ctx.exception))


class Speech(unittest.TestCase):
    def test_tts_1_as_a_wav_that_parses(self):
        import io
        import wave

        r = client.audio.speech.create(model="tts-1", voice="alloy", input="Hello there", response_format="wav")
        with wave.open(io.BytesIO(r.content)) as w:
            self.assertEqual((w.getframerate(), w.getsampwidth(), w.getnchannels()), (24000, 2, 1))
            self.assertEqual(w.getnframes(), 2400)

    def test_pcm_and_a_refused_format(self):
        r = client.audio.speech.create(model="tts-1", voice="nova", input="Hi", response_format="pcm")
        self.assertEqual(len(r.content), 4800)
        with self.assertRaises(openai.BadRequestError) as ctx:
            client.audio.speech.create(model="tts-1", voice="nova", input="Hi", response_format="mp3")
        self.assertIn("wav or pcm", str(ctx.exception))



RESPONSE_TOOLS = [{"type": "function", "name": "get_weather", "description": "Current weather for a city",
                   "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                                  "additionalProperties": False}, "strict": True}]


class Responses(unittest.TestCase):
    """The Responses API on a Gemini 3 model (gpt-5* through models.aliases), whose tool calls
    carry thought signatures the fake demands back."""

    def test_create_and_retrieve(self):
        r = client.responses.create(model=MODEL, input="Hello")
        self.assertEqual(r.output_text, "Hello from the fake.")
        self.assertEqual(r.status, "completed")
        self.assertEqual(client.responses.retrieve(r.id).id, r.id)
        client.responses.delete(r.id)
        with self.assertRaises(openai.NotFoundError):
            client.responses.retrieve(r.id)

    def test_tool_loop_with_previous_response_id(self):
        first = client.responses.create(model="gpt-5-codex", input="Weather in Paris?", tools=RESPONSE_TOOLS,
                                        reasoning={"effort": "low", "summary": "auto"})
        call = next(i for i in first.output if i.type == "function_call")
        self.assertEqual(json.loads(call.arguments), {"city": "Paris"})
        second = client.responses.create(model="gpt-5-codex", previous_response_id=first.id, tools=RESPONSE_TOOLS,
                                         input=[{"type": "function_call_output", "call_id": call.call_id, "output": "21 C"}])
        self.assertEqual(second.output_text, "It is 21 degrees in Paris.")

    def test_stateless_loop_resending_items(self):
        first = client.responses.create(model="gpt-5-codex", input="Weather in Paris?", tools=RESPONSE_TOOLS, store=False,
                                        include=["reasoning.encrypted_content"])
        items = [{"role": "user", "content": "Weather in Paris?"}] + [i.model_dump(exclude_none=True) for i in first.output]
        call = next(i for i in first.output if i.type == "function_call")
        items.append({"type": "function_call_output", "call_id": call.call_id, "output": "21 C"})
        second = client.responses.create(model="gpt-5-codex", input=items, tools=RESPONSE_TOOLS, store=False)
        self.assertEqual(second.output_text, "It is 21 degrees in Paris.")

    def test_stream(self):
        with client.responses.stream(model="gpt-5-codex", input="Weather in Paris?", tools=RESPONSE_TOOLS) as stream:
            kinds = [e.type for e in stream]
            final = stream.get_final_response()
        self.assertEqual(kinds[0], "response.created")
        self.assertEqual(kinds[-1], "response.completed")
        self.assertIn("response.function_call_arguments.done", kinds)
        self.assertEqual([i.type for i in final.output], ["function_call"])

    def test_stream_text(self):
        with client.responses.stream(model=MODEL, input="Hello") as stream:
            text = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
        self.assertEqual(text, "Hello there")



class ToolSchemas(unittest.TestCase):
    """Tool schemas agents really send reach Gemini in a form it accepts (the fake refuses, as
    Google does, keywords Gemini's Schema lacks and non-string enums)."""

    def test_a_nested_pydantic_tool(self):
        import enum
        from typing import Optional

        import pydantic

        class Unit(str, enum.Enum):
            c = "c"
            f = "f"

        class Address(pydantic.BaseModel):
            city: str
            zip: Optional[str] = None

        class GetWeather(pydantic.BaseModel):
            home: Address
            unit: Unit
            days: int = pydantic.Field(json_schema_extra={"enum": [1, 3, 7]})

        tool = openai.pydantic_function_tool(GetWeather)
        self.assertIn("$defs", json.dumps(tool))
        r = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Weather?"}], tools=[tool])
        self.assertEqual(r.choices[0].finish_reason, "tool_calls")

    def test_an_mcp_style_schema_with_const_and_formats(self):
        tool = {"type": "function", "function": {"name": "fetch", "description": "Fetch a URL", "parameters": {
            "$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object", "additionalProperties": False,
            "properties": {"url": {"type": "string", "format": "uri"}, "method": {"const": "GET"},
                           "retries": {"type": "integer", "enum": [0, 1, 2], "exclusiveMaximum": 3}},
            "required": ["url"]}}}
        r = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Fetch it"}], tools=[tool])
        self.assertEqual(r.choices[0].message.tool_calls[0].function.name, "fetch")


if __name__ == "__main__":
    unittest.main()
