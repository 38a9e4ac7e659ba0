//! Client dialects: each turns a client request into an upstream call plus a `proxy::Render` for
//! the answer, and never talks to the key pool or the upstream itself.

pub mod gemini;
pub mod openai;
pub mod passthrough;
pub mod schema;
pub mod signature;
pub mod wire;
