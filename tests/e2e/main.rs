//! End to end against real servers written by other people: llama.cpp's `llama-server`
//! with a tiny model, Redis, and the official Anthropic SDK, all through `continuum serve`
//! run as a process. `scripts/real-backends.sh install` (run by `.ci/run`) fetches
//! llama-server and the model; when they are missing or this CPU lacks AVX-512, every test
//! here says so loudly and passes without running. Assertions are about protocol and
//! behaviour (status, shape, headers, usage, which backend answered), never the wording.

#[allow(dead_code)]
#[path = "../it/common.rs"]
mod common;

mod llama;
mod real;
