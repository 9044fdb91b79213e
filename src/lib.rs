//! Continuum: a fast LLM API router. One OpenAI-compatible endpoint in front of many model
//! backends (OpenAI, vLLM, llama.cpp, LM Studio, LocalAI, Ollama, any OpenAI-compatible
//! server, and a built-in `mock`).
//!
//! The `continuum` binary is a thin command line over this library; programs can embed
//! the router with [`Router::builder`] (see `examples/embedded.rs`).

pub mod acp;
pub mod auth;
pub mod backend;
pub mod bench;
pub mod cache;
pub mod client;
pub mod config;
pub mod error;
pub mod files;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod metrics;
pub mod oauth;
pub mod pipeline;
pub mod prompts;
pub mod protocol;
pub mod ratelimit;
pub mod redis;
pub mod resilience;
pub mod routing;
mod server;
pub mod state;
pub mod stats;
pub mod store;
pub mod telemetry;
pub mod tokens;
pub mod trace;

pub use server::{
    BoundAddr, HeadlessRouter, ReloadSource, Router, RouterBuilder, RunningRouter, StartError,
    DEFAULT_DISCOVERY_INTERVAL,
};
