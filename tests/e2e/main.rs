//! End to end against real servers written by other people: llama.cpp's `llama-server`
//! with a tiny model, Redis, and the official Anthropic SDK, all through `continuum serve`
//! run as a process. `scripts/real-backends.sh install` (run by `scripts/test`) fetches
//! llama-server and the model; when they are missing or this CPU lacks AVX-512, every test
//! here fails saying why — or, with `CONTINUUM_E2E_SKIP` set to a reason (`scripts/test`
//! sets it on such a machine and says so loudly), passes without running. Assertions are
//! about protocol and behaviour (status, shape, headers, usage, which backend answered),
//! never the wording.

#[allow(dead_code)]
#[path = "../it/common.rs"]
mod common;

mod acp;
mod cache_routing;
mod llama;
mod real;
