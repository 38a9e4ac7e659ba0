"""The official anthropic Python SDK against the gateway's Messages API (FakeGemini upstream).

Run by gatewayd's integration test `sdk::anthropic_python_sdk`, which sets GATEWAY_URL and GATEWAY_TOKEN.
The gateway serves `claude-*` names with a Gemini 3 model (models.aliases), whose tool calls carry
thought signatures the fake demands back.
"""

import os
import unittest

import anthropic

URL = os.environ["GATEWAY_URL"]
TOKEN = os.environ["GATEWAY_TOKEN"]
client = anthropic.Anthropic(base_url=URL, api_key=TOKEN, max_retries=0)
MODEL = "claude-sonnet-4-5"
TOOLS = [{
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}]
ASK = {"role": "user", "content": "Weather in Paris?"}


class Messages(unittest.TestCase):
    def test_create(self):
        m = client.messages.create(model="gemini-2.5-flash", max_tokens=64, messages=[{"role": "user", "content": "Hello"}])
        self.assertTrue(m.id.startswith("msg_"))
        self.assertEqual(m.content[0].text, "Hello from the fake.")
        self.assertEqual(m.stop_reason, "end_turn")
        self.assertEqual(m.usage.input_tokens, 7)

    def test_tool_loop_with_thinking(self):
        first = client.messages.create(model=MODEL, max_tokens=512, tools=TOOLS, messages=[ASK],
                                       thinking={"type": "enabled", "budget_tokens": 1024})
        self.assertEqual(first.stop_reason, "tool_use")
        self.assertEqual(first.content[0].type, "thinking")
        call = next(b for b in first.content if b.type == "tool_use")
        self.assertTrue(call.id.startswith("toolu_"))
        self.assertEqual(call.input, {"city": "Paris"})
        second = client.messages.create(
            model=MODEL, max_tokens=512, tools=TOOLS,
            thinking={"type": "enabled", "budget_tokens": 1024},
            messages=[ASK, {"role": "assistant", "content": first.content},
                      {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "21 C"}]}])
        self.assertEqual(second.stop_reason, "end_turn")
        self.assertIn("21 degrees", "".join(b.text for b in second.content if b.type == "text"))

    def test_stream(self):
        with client.messages.stream(model=MODEL, max_tokens=512, tools=TOOLS, messages=[ASK],
                                    thinking={"type": "enabled", "budget_tokens": 1024}) as stream:
            kinds = [e.type for e in stream]
            final = stream.get_final_message()
        self.assertEqual(kinds[0], "message_start")
        self.assertIn("content_block_delta", kinds)
        self.assertEqual(final.stop_reason, "tool_use")
        self.assertEqual([b.type for b in final.content], ["thinking", "tool_use"])
        self.assertEqual(final.content[1].input, {"city": "Paris"})

    def test_stream_text(self):
        with client.messages.stream(model="gemini-2.5-flash", max_tokens=64,
                                    messages=[{"role": "user", "content": "Hello"}]) as stream:
            text = "".join(stream.text_stream)
        self.assertEqual(text, "Hello there")

    def test_count_tokens(self):
        r = client.messages.count_tokens(model=MODEL, tools=TOOLS, messages=[ASK])
        self.assertEqual(r.input_tokens, 7)

    def test_errors(self):
        bad = anthropic.Anthropic(base_url=URL, api_key="wrong-token", max_retries=0)
        with self.assertRaises(anthropic.AuthenticationError):
            bad.messages.create(model=MODEL, max_tokens=8, messages=[ASK])
        with self.assertRaises(anthropic.RateLimitError):
            client.messages.create(model="gemini-2.5-flash-exhausted", max_tokens=8, messages=[ASK])
        with self.assertRaises(anthropic.BadRequestError) as ctx:
            client.messages.create(model=MODEL, max_tokens=8, messages=[{"role": "user", "content": []}])
        self.assertIn("messages", str(ctx.exception))


if __name__ == "__main__":
    unittest.main()
