//! Integration tests: the router as a real HTTP server against real (in-process) HTTP
//! backends, and the `continuum` binary run as a process.

mod access;
mod admin;
mod admission;
mod anthropic;
mod anthropic_backend;
mod cache;
mod claude_code;
mod cli;
mod common;
mod cors;
mod endpoints;
mod faults;
mod files;
mod gemini;
mod metrics;
mod migrate;
mod models;
mod oauth;
mod ollama;
mod operations;
mod pairs;
mod prompts;
mod proxy;
mod ratelimit;
mod reasoning;
mod reload;
mod resilience;
mod responses;
mod sdk;
mod serve;
mod streams;
mod toolkit;
mod tracing;
mod usage;
