//! The OpenAI chat-completions dialect, by noun: the request, the whole answer, the stream.

pub(crate) mod request;
mod response;
mod stream;
#[cfg(test)]
pub(crate) mod tests;

pub use self::request::{Options, chat_request, remote_image_urls};
pub use self::response::chat_response;
pub use self::stream::{ChunkTranslator, Translate};
