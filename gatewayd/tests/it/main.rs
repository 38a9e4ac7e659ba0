//! The one integration-test binary of gatewayd: the real daemon over real sockets against
//! FakeGemini.

mod admin;
mod agents;
mod anthropic;
mod blame;
mod edge;
mod files;
mod health;
mod interactions;
mod labels;
mod media;
mod native;
mod openai;
mod outbound;
mod process;
mod responses;
mod sdk;
