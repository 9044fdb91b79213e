//! Wire formats of the APIs clients speak to the router, and pure translations between
//! them and OpenAI's chat format (which every backend adapter takes).

pub mod anthropic;
pub mod anthropic_backend;
pub mod gemini;
