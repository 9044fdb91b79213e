use serde_json::{json, Value};

use super::*;

const GENERATE_REQUEST: &str = include_str!("../../../tests/fixtures/images/generate_request.json");
const GEMINI_REQUEST: &str = include_str!("../../../tests/fixtures/images/gemini_request.json");
const GEMINI_REPLY: &str = include_str!("../../../tests/fixtures/images/gemini_reply.json");
const GEMINI_THINKING: &str =
    include_str!("../../../tests/fixtures/images/gemini_reply_thinking.json");
const GEMINI_IMAGE_SAFETY: &str =
    include_str!("../../../tests/fixtures/images/gemini_reply_image_safety.json");
const GEMINI_PROMPT_BLOCKED: &str =
    include_str!("../../../tests/fixtures/images/gemini_reply_prompt_blocked.json");
const GEMINI_TEXT_ONLY: &str =
    include_str!("../../../tests/fixtures/images/gemini_reply_text_only.json");
const OPENAI_REPLY: &str = include_str!("../../../tests/fixtures/images/openai_reply.json");
const OPENAI_B64_REPLY: &str = include_str!("../../../tests/fixtures/images/openai_b64_reply.json");
const OPENAI_URL_REPLY: &str = include_str!("../../../tests/fixtures/images/openai_url_reply.json");

/// The fixtures' 1x1 PNGs.
const OTTER: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR42mPojtIGAAKEARGtHjFHAAAAAElFTkSuQmCC";
const SKETCH: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR42mNoaGgAAAMEAYF1LgG8AAAAAElFTkSuQmCC";

const CREATED: u64 = 1713833628;

fn value(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

fn fixture(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

fn parse(v: Value) -> Result<GenerateRequest, String> {
    GenerateRequest::parse(v.to_string().as_bytes())
}

fn request(size: &str) -> GenerateRequest {
    parse(json!({"model": "gemini-2.5-flash-image", "prompt": "an otter", "size": size})).unwrap()
}

// ---------------------------------------------------------------------------------------
// GenerateRequest::parse

#[test]
fn the_documented_request_parses() {
    let req = GenerateRequest::parse(GENERATE_REQUEST.as_bytes()).unwrap();
    assert_eq!(
        req,
        GenerateRequest {
            model: "gpt-image-1.5".into(),
            prompt: "A cute baby sea otter".into(),
            n: 1,
            size: Size::Pixels {
                width: 1536,
                height: 1024
            },
            quality: Some(Quality::High),
            response_format: None,
            output_format: Some(OutputFormat::Png),
            background: Some(Background::Opaque),
            style: None,
            user: Some("user-1234".into()),
            stream: false,
        }
    );
}

#[test]
fn defaults_nulls_and_every_word() {
    let req = parse(
        json!({"model": "m", "prompt": "p", "n": null, "size": null, "quality": null,
        "response_format": null, "user": null, "moderation": "low", "output_compression": 50}),
    )
    .unwrap();
    assert_eq!(
        (req.n, req.size, req.quality, req.user),
        (1, Size::Auto, None, None)
    );
    for (word, q) in Quality::ALL {
        assert_eq!(
            parse(json!({"model": "m", "prompt": "p", "quality": word}))
                .unwrap()
                .quality,
            Some(*q)
        );
        assert_eq!(q.as_str(), *word);
    }
    let req = parse(
        json!({"model": "m", "prompt": "p", "n": 10, "response_format": "url",
        "style": "natural", "background": "transparent", "output_format": "webp", "stream": true}),
    )
    .unwrap();
    assert_eq!(req.n, 10);
    assert_eq!(req.response_format, Some(ResponseFormat::Url));
    assert_eq!(req.style, Some(Style::Natural));
    assert_eq!(req.background, Some(Background::Transparent));
    assert_eq!(req.output_format, Some(OutputFormat::Webp));
    assert!(req.stream);
}

#[test]
fn sizes() {
    for s in [
        "256x256",
        "512x512",
        "1024x1024",
        "1536x1024",
        "1024x1536",
        "1792x1024",
        "1024x1792",
    ] {
        assert_eq!(request(s).size.to_string(), s);
    }
    // gpt-image-2's flexible sizes and other servers' sizes pass; the backend judges them.
    assert_eq!(
        request("3840x2160").size,
        Size::Pixels {
            width: 3840,
            height: 2160
        }
    );
    assert_eq!(request("auto").size, Size::Auto);
    for bad in [
        "",
        "big",
        "1024",
        "1024X1024",
        "1024*1024",
        "x1024",
        "1024x",
        "0x1024",
        "01024x1024",
        "-1x5",
        "1024x1024x1",
        " 1024x1024",
        "16385x16",
        "99999999999x1",
    ] {
        let err = parse(json!({"model": "m", "prompt": "p", "size": bad})).unwrap_err();
        assert!(
            err.starts_with("size must be \"auto\" or WIDTHxHEIGHT"),
            "{bad}: {err}"
        );
    }
}

#[test]
fn bad_fields_are_named() {
    let cases = [
        (json!({"prompt": "p"}), "model is required"),
        (json!({"model": 5, "prompt": "p"}), "model must be a string"),
        (json!({"model": " ", "prompt": "p"}), "model must not be empty"),
        (json!({"model": "m"}), "prompt is required"),
        (json!({"model": "m", "prompt": ""}), "prompt must not be empty"),
        (json!({"model": "m", "prompt": " \n"}), "prompt must not be empty"),
        (json!({"model": "m", "prompt": ["p"]}), "prompt must be a string"),
        (json!({"model": "m", "prompt": "p", "n": 0}), "n must be an integer from 1 to 10"),
        (json!({"model": "m", "prompt": "p", "n": 11}), "n must be an integer from 1 to 10"),
        (json!({"model": "m", "prompt": "p", "n": 2.5}), "n must be an integer from 1 to 10"),
        (json!({"model": "m", "prompt": "p", "n": "2"}), "n must be an integer from 1 to 10"),
        (json!({"model": "m", "prompt": "p", "n": -1}), "n must be an integer from 1 to 10"),
        (json!({"model": "m", "prompt": "p", "n": 300}), "n must be an integer from 1 to 10"),
        (json!({"model": "m", "prompt": "p", "size": 1024}), "size must be a string"),
        (json!({"model": "m", "prompt": "p", "quality": "ultra"}),
            "quality must be one of \"auto\", \"low\", \"medium\", \"high\", \"standard\" or \"hd\""),
        (json!({"model": "m", "prompt": "p", "response_format": "png"}),
            "response_format must be one of \"url\" or \"b64_json\""),
        (json!({"model": "m", "prompt": "p", "output_format": "gif"}),
            "output_format must be one of \"png\", \"jpeg\" or \"webp\""),
        (json!({"model": "m", "prompt": "p", "background": "white"}),
            "background must be one of \"transparent\", \"opaque\" or \"auto\""),
        (json!({"model": "m", "prompt": "p", "style": "noir"}),
            "style must be one of \"vivid\" or \"natural\""),
        (json!({"model": "m", "prompt": "p", "user": 7}), "user must be a string"),
        (json!({"model": "m", "prompt": "p", "stream": "yes"}), "stream must be a boolean"),
    ];
    for (body, want) in cases {
        assert_eq!(parse(body.clone()).unwrap_err(), want, "{body}");
    }
}

#[test]
fn bodies_that_are_not_objects() {
    assert_eq!(
        GenerateRequest::parse(b"[1]").unwrap_err(),
        "request body must be a JSON object"
    );
    assert!(GenerateRequest::parse(b"{\"model\":")
        .unwrap_err()
        .starts_with("request body is not valid JSON"));
    assert!(
        GenerateRequest::parse(br#"{"model":"a","model":"b","prompt":"p"}"#)
            .unwrap_err()
            .contains("duplicate field `model`")
    );
}

// ---------------------------------------------------------------------------------------
// to_gemini

#[test]
fn the_documented_request_becomes_a_gemini_body() {
    let req = GenerateRequest::parse(GENERATE_REQUEST.as_bytes()).unwrap();
    let body = to_gemini(&req, "gemini-2.5-flash-image").unwrap();
    assert_eq!(value(&body), fixture(GEMINI_REQUEST));
}

#[test]
fn sizes_become_the_nearest_aspect_ratio() {
    let cases = [
        ("256x256", "1:1"),
        ("512x512", "1:1"),
        ("1024x1024", "1:1"),
        ("1536x1024", "3:2"),
        ("1024x1536", "2:3"),
        ("1792x1024", "16:9"),
        ("1024x1792", "9:16"),
        ("1184x864", "4:3"),
        ("896x1088", "4:5"),
        ("1536x640", "21:9"),
        ("1536x512", "21:9"),
    ];
    for (size, ratio) in cases {
        let body = value(&to_gemini(&request(size), "gemini-2.5-flash-image").unwrap());
        assert_eq!(
            body["generationConfig"]["imageConfig"],
            json!({"aspectRatio": ratio}),
            "{size}"
        );
    }
    let auto = value(&to_gemini(&request("auto"), "gemini-2.5-flash-image").unwrap());
    assert_eq!(
        auto["generationConfig"],
        json!({"responseModalities": ["TEXT", "IMAGE"]})
    );
}

#[test]
fn large_sizes_ask_for_a_larger_tier() {
    let cases = [
        ("1792x1024", None),
        ("1536x1536", Some("2K")),
        ("2048x1152", Some("2K")),
        ("2048x2048", Some("2K")),
        ("3840x2160", Some("4K")),
        ("4096x4096", Some("4K")),
    ];
    for (size, tier) in cases {
        let body = value(&to_gemini(&request(size), "gemini-3-pro-image-preview").unwrap());
        assert_eq!(
            body["generationConfig"]["imageConfig"].get("imageSize"),
            tier.map(|t| json!(t)).as_ref(),
            "{size}"
        );
    }
}

#[test]
fn what_gemini_cannot_do_is_refused_naming_the_field() {
    let mut req = request("1024x1024");
    assert!(to_gemini(&req, "imagen-4.0-generate-001")
        .unwrap_err()
        .starts_with("model imagen-4.0-generate-001 is an Imagen model"));
    req.background = Some(Background::Transparent);
    assert!(to_gemini(&req, "gemini-2.5-flash-image")
        .unwrap_err()
        .starts_with("background \"transparent\" is not supported"));
    req.background = Some(Background::Opaque);
    req.stream = true;
    assert!(to_gemini(&req, "gemini-2.5-flash-image")
        .unwrap_err()
        .starts_with("stream is not supported"));
}

#[test]
fn the_prompt_is_sent_as_written() {
    let mut req = request("auto");
    req.prompt = "\"quoted\"\nline 🦦 \\ end".into();
    let body = value(&to_gemini(&req, "gemini-2.5-flash-image").unwrap());
    assert_eq!(body["contents"][0]["parts"][0]["text"], json!(req.prompt));
}

// ---------------------------------------------------------------------------------------
// from_gemini

#[test]
fn the_documented_reply_becomes_an_openai_reply() {
    let reply = from_gemini(GEMINI_REPLY.as_bytes(), CREATED).unwrap();
    assert_eq!(value(&reply), fixture(OPENAI_REPLY));
}

#[test]
fn thought_parts_are_skipped() {
    let reply = value(&from_gemini(GEMINI_THINKING.as_bytes(), CREATED).unwrap());
    assert_eq!(
        reply,
        json!({
            "created": CREATED,
            "data": [{"b64_json": OTTER}],
            "output_format": "png",
            "usage": {
                "total_tokens": 1275, "input_tokens": 7, "output_tokens": 1268,
                "input_tokens_details": {"text_tokens": 7, "image_tokens": 0},
                "output_tokens_details": {"text_tokens": 148, "image_tokens": 1120}
            }
        })
    );
}

#[test]
fn replies_merge_in_order_and_sum_usage() {
    let thinking = GEMINI_THINKING.replace(OTTER, SKETCH);
    let reply = value(
        &from_gemini_replies(&[GEMINI_REPLY.as_bytes(), thinking.as_bytes()], CREATED).unwrap(),
    );
    assert_eq!(reply["data"][0]["b64_json"], json!(OTTER));
    assert_eq!(reply["data"][1], json!({"b64_json": SKETCH}));
    assert_eq!(reply["usage"]["total_tokens"], json!(1309 + 1275));
    assert_eq!(reply["usage"]["output_tokens"], json!(1302 + 1268));
    assert_eq!(
        reply["usage"]["output_tokens_details"],
        json!({"text_tokens": 12 + 148, "image_tokens": 1290 + 1120})
    );
}

#[test]
fn no_image_is_an_error_naming_why() {
    let err = from_gemini(GEMINI_IMAGE_SAFETY.as_bytes(), CREATED).unwrap_err();
    assert_eq!(err, format!("{REFUSED} (finishReason IMAGE_SAFETY)"));
    let err = from_gemini(GEMINI_PROMPT_BLOCKED.as_bytes(), CREATED).unwrap_err();
    assert_eq!(
        err,
        format!("{REFUSED}: the prompt was blocked (blockReason PROHIBITED_CONTENT)")
    );
    let err = from_gemini(GEMINI_TEXT_ONLY.as_bytes(), CREATED).unwrap_err();
    assert!(
        err.starts_with("gemini returned no image (finishReason STOP); it answered in text: \"A design proposal"),
        "{err}"
    );
    let err = from_gemini(
        br#"{"candidates":[{"finishReason":"NO_IMAGE","finishMessage":"No image was made."}]}"#,
        CREATED,
    )
    .unwrap_err();
    assert_eq!(
        err,
        "gemini returned no image (finishReason NO_IMAGE): No image was made."
    );
    assert_eq!(
        from_gemini(b"{}", CREATED).unwrap_err(),
        "gemini reply has no candidates and no image"
    );
    // One failed reply of several fails the answer, saying which.
    let err = from_gemini_replies(
        &[GEMINI_REPLY.as_bytes(), GEMINI_IMAGE_SAFETY.as_bytes()],
        CREATED,
    )
    .unwrap_err();
    assert!(err.ends_with("(reply 2 of 2)"), "{err}");
    assert!(from_gemini(b"not json", CREATED)
        .unwrap_err()
        .starts_with("gemini reply is not valid JSON"));
}

#[test]
fn snake_case_and_other_mime_types() {
    let reply = json!({"candidates": [{"content": {"parts": [
        {"inline_data": {"mime_type": "image/jpeg", "data": "/9j/4AAQ"}},
        {"inlineData": {"mimeType": "image/png", "data": OTTER}},
        {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0="}}
    ]}, "finishReason": "STOP"}]});
    let out = value(&from_gemini(reply.to_string().as_bytes(), CREATED).unwrap());
    assert_eq!(
        out,
        json!({"created": CREATED, "data": [{"b64_json": "/9j/4AAQ"}, {"b64_json": OTTER}]})
    );
}

// ---------------------------------------------------------------------------------------
// b64_images, with_urls

#[test]
fn b64_images_are_decoded_with_their_type() {
    let images = b64_images(OPENAI_B64_REPLY.as_bytes()).unwrap();
    let png = |b64: &str| Bytes::from(BASE64.decode(b64).unwrap());
    assert_eq!(
        images,
        vec![
            (0, png(OTTER), "image/png".to_string()),
            (1, png(SKETCH), "image/png".to_string()),
        ]
    );
    assert!(images[0].1.starts_with(b"\x89PNG\r\n\x1a\n"));
    assert_eq!(images[0].1.len(), 69);
}

#[test]
fn b64_images_skip_urls_and_fall_back_on_output_format() {
    let reply = json!({"created": 1, "output_format": "webp", "data": [
        {"url": "https://example.com/a.png"},
        {"b64_json": "AAECAw", "revised_prompt": "r"},
        {"b64_json": null, "url": "https://example.com/b.png"}
    ]});
    let images = b64_images(reply.to_string().as_bytes()).unwrap();
    assert_eq!(
        images,
        vec![(
            1,
            Bytes::from_static(&[0, 1, 2, 3]),
            "image/webp".to_string()
        )]
    );
    // An escaped slash (`/` is a base64 digit) is read too.
    let reply = br#"{"data": [{"b64_json": "\/\/8="}]}"#;
    assert_eq!(
        b64_images(reply).unwrap()[0].1,
        Bytes::from_static(&[0xff, 0xff])
    );
    let reply = json!({"data": [{"b64_json": "AAECAw=="}]});
    assert_eq!(
        b64_images(reply.to_string().as_bytes()).unwrap()[0].2,
        "application/octet-stream"
    );
    assert!(b64_images(br#"{"created": 1}"#).unwrap().is_empty());
}

#[test]
fn b64_images_name_bad_data() {
    let err = b64_images(br#"{"data":[{"url":"u"},{"b64_json":"not base64!"}]}"#).unwrap_err();
    assert!(
        err.starts_with("images reply: data[1].b64_json is not base64"),
        "{err}"
    );
    let err = b64_images(br#"{"data":[{"b64_json":5}]}"#).unwrap_err();
    assert_eq!(err, "images reply: data[0].b64_json must be a string");
    assert!(b64_images(b"<html>")
        .unwrap_err()
        .starts_with("images reply is not valid JSON"));
}

#[test]
fn with_urls_puts_urls_in_place_of_base64() {
    let urls = [
        "https://continuum.example/v1/images/files/img_7b1c.png?expires=1713837228".to_string(),
        "https://continuum.example/v1/images/files/img_90fe.png?expires=1713837228".to_string(),
    ];
    let out = with_urls(OPENAI_B64_REPLY.as_bytes(), &urls).unwrap();
    assert_eq!(value(&out), fixture(OPENAI_URL_REPLY));
    // Member order is kept.
    let text = std::str::from_utf8(&out).unwrap();
    assert!(text.starts_with(r#"{"created":1713833628,"background":"opaque","data":[{"url":"#));
}

#[test]
fn with_urls_keeps_other_items_and_checks_the_count() {
    let reply = br#"{"created":1,"data":[{"url":"https://example.com/a.png"},{"b64_json":"AAEC","revised_prompt":"an \"otter\"","url":null}]}"#;
    let out = with_urls(reply, &["https://r.example/x".to_string()]).unwrap();
    assert_eq!(
        std::str::from_utf8(&out).unwrap(),
        r#"{"created":1,"data":[{"url":"https://example.com/a.png"},{"url":"https://r.example/x","revised_prompt":"an \"otter\""}]}"#
    );
    assert_eq!(
        with_urls(reply, &[]).unwrap_err(),
        "urls: 0 given for 1 base64 images"
    );
    assert_eq!(
        with_urls(br#"{"data":[1]}"#, &[]).unwrap_err(),
        "images reply: data must be an array of objects"
    );
    assert_eq!(
        with_urls(br#"{"created":1}"#, &[]).unwrap().as_ref(),
        br#"{"created":1}"#
    );
}

#[test]
fn a_translated_reply_can_be_hosted() {
    let reply = from_gemini(GEMINI_REPLY.as_bytes(), CREATED).unwrap();
    let images = b64_images(&reply).unwrap();
    assert_eq!(images.len(), 1);
    assert_eq!(images[0].2, "image/png");
    let hosted = value(&with_urls(&reply, &["https://r.example/1".to_string()]).unwrap());
    assert_eq!(
        hosted["data"],
        json!([{"url": "https://r.example/1",
                "revised_prompt": "Here is a cute baby sea otter floating on its back."}])
    );
    assert_eq!(hosted["usage"]["total_tokens"], json!(1309));
}

// ---------------------------------------------------------------------------------------
// boundary

#[test]
fn boundaries_of_real_clients() {
    let cases = [
        // curl
        (
            "multipart/form-data; boundary=------------------------d74496d66958873e",
            "------------------------d74496d66958873e",
        ),
        // browsers
        (
            "multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW",
            "----WebKitFormBoundary7MA4YWxkTrZu0gW",
        ),
        // httpx (the OpenAI Python SDK)
        (
            "multipart/form-data; boundary=a5e4a9f2cbb5d1c3a4b2e1f0d9c8b7a6",
            "a5e4a9f2cbb5d1c3a4b2e1f0d9c8b7a6",
        ),
        // case, spacing, other parameters, a quoted value with RFC 2046's specials
        (
            "Multipart/Form-Data;charset=utf-8;  BOUNDARY=\"simple boundary\"",
            "simple boundary",
        ),
        (
            "multipart/form-data; boundary=\"'()+_,-./:=?\"; charset=utf-8",
            "'()+_,-./:=?",
        ),
        ("multipart/form-data; boundary=\"a\\-b\"", "a-b"),
    ];
    for (content_type, want) in cases {
        assert_eq!(boundary(content_type).unwrap(), want, "{content_type}");
    }
    let longest = "b".repeat(70);
    assert_eq!(
        boundary(&format!("multipart/form-data; boundary={longest}")).unwrap(),
        longest
    );
}

#[test]
fn bad_boundaries_are_refused() {
    let cases = [
        (
            "application/json",
            "Content-Type must be multipart/form-data, not \"application/json\"",
        ),
        (
            "multipart/mixed; boundary=abc",
            "Content-Type must be multipart/form-data, not \"multipart/mixed\"",
        ),
        (
            "multipart/form-data",
            "boundary is missing from the multipart/form-data Content-Type",
        ),
        (
            "multipart/form-data; charset=utf-8",
            "boundary is missing from the multipart/form-data Content-Type",
        ),
        (
            "multipart/form-data; boundary=",
            "boundary must be 1 to 70 characters long (RFC 2046), not 0",
        ),
        (
            "multipart/form-data; boundary=\"\"",
            "boundary must be 1 to 70 characters long (RFC 2046), not 0",
        ),
        (
            "multipart/form-data; boundary=a; boundary=b",
            "boundary is given twice in the Content-Type",
        ),
        (
            "multipart/form-data; boundary=\"trailing \"",
            "boundary must not end with a space (RFC 2046)",
        ),
        (
            "multipart/form-data; boundary=\"open",
            "Content-Type parameter boundary has an unterminated quoted value",
        ),
        (
            "multipart/form-data; boundary",
            "Content-Type parameter \"boundary\" has no value",
        ),
    ];
    for (content_type, want) in cases {
        assert_eq!(boundary(content_type).unwrap_err(), want, "{content_type}");
    }
    let long = format!("multipart/form-data; boundary={}", "b".repeat(71));
    assert_eq!(
        boundary(&long).unwrap_err(),
        "boundary must be 1 to 70 characters long (RFC 2046), not 71"
    );
    for c in ['@', '<', '"', '\\', 'é', '\u{0}', '[', '%'] {
        let ct = format!(
            "multipart/form-data; boundary=\"ab{}cd\"",
            if c == '"' || c == '\\' {
                format!("\\{c}")
            } else {
                c.to_string()
            }
        );
        let err = boundary(&ct).unwrap_err();
        assert!(
            err.starts_with(&format!("boundary has {c:?}")),
            "{ct}: {err}"
        );
    }
}
