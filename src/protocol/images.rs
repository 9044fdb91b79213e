//! OpenAI's image endpoints: `POST /v1/images/generations` (JSON), `/v1/images/edits` and
//! `/v1/images/variations` (multipart).
//!
//! OpenAI-compatible backends take the client's body as it is: [`GenerateRequest::parse`]
//! and [`boundary`] only refuse bad requests early. Gemini image models ("Nano Banana":
//! `gemini-2.5-flash-image`, `gemini-3-pro-image-preview`, …) are translated:
//!
//! ```json
//! {"contents": [{"role": "user", "parts": [{"text": "<prompt>"}]}],
//!  "generationConfig": {"responseModalities": ["TEXT", "IMAGE"],
//!                       "imageConfig": {"aspectRatio": "3:2", "imageSize"?: "2K"}}}
//! ```
//!
//! Gemini image models refuse `candidateCount` above 1 ("Multiple candidates is not enabled
//! for this model"), so [`to_gemini`] asks for one image and the caller sends that body `n`
//! times, merging the replies with [`from_gemini_replies`]. Imagen models (`imagen-*`) are
//! served by a different method (`:predict`) and are refused.
//!
//! Replies come back as OpenAI's `{"created", "data": [{"b64_json", "revised_prompt"?}],
//! "output_format"?, "usage"?}`. For `response_format: url` the router hosts the images
//! itself: [`b64_images`] hands it the decoded images of a `b64_json` reply (either a
//! backend's or a translated one) and [`with_urls`] puts its URLs in their place.

use std::borrow::Cow;
use std::fmt;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use bytes::Bytes;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::input::{parse_reply, parse_request, to_bytes};

/// The start of every [`from_gemini`] error that is a content-policy refusal (a blocked
/// prompt, an image withheld for safety, prohibited content or recitation): the client's
/// request is at fault, not the backend.
pub const REFUSED: &str = "gemini refused to make the image";

// ---------------------------------------------------------------------------------------
// The generations request

/// A `POST /v1/images/generations` body, checked. Fields the router does not look at
/// (`moderation`, `output_compression`, `partial_images`, …) are left to the backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerateRequest {
    /// The model, required (the router routes on it).
    pub model: String,
    /// The prompt, required and not blank.
    pub prompt: String,
    /// How many images, 1–10 (default 1).
    pub n: u8,
    /// The image size (default `auto`).
    pub size: Size,
    /// `quality`.
    pub quality: Option<Quality>,
    /// `response_format`; absent, the backend's own default stands (`b64_json` for the GPT
    /// image models).
    pub response_format: Option<ResponseFormat>,
    /// `output_format`.
    pub output_format: Option<OutputFormat>,
    /// `background`.
    pub background: Option<Background>,
    /// `style` (DALL·E 3's).
    pub style: Option<Style>,
    /// `user`, the end-user id.
    pub user: Option<String>,
    /// `stream` (the GPT image models stream partial images).
    pub stream: bool,
}

/// `size`: `auto`, or `WIDTHxHEIGHT` in pixels.
///
/// OpenAI's fixed sizes are `1024x1024`, `1536x1024`, `1024x1536` (GPT image models),
/// `256x256`, `512x512` (DALL·E 2) and `1792x1024`, `1024x1792` (DALL·E 3); `gpt-image-2`
/// also takes other sizes (edges multiples of 16 up to 3840), and other OpenAI-compatible
/// servers have sizes of their own. So any `WIDTHxHEIGHT` of positive edges up to
/// [`MAX_EDGE`] passes, and the backend judges whether it makes that size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    /// `auto`: the model chooses.
    Auto,
    /// `WIDTHxHEIGHT`.
    Pixels {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
    },
}

/// The longest image edge [`Size`] takes (well past any image model's 4K).
pub const MAX_EDGE: u32 = 16384;

/// Closed sets of wire words: an enum with its spelling and its parse.
macro_rules! words {
    ($(#[$doc:meta])* $name:ident, $field:literal, [$($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)?]) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            const ALL: &'static [(&'static str, $name)] = &[$(($text, $name::$variant)),+];

            /// The wire spelling.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            fn parse(raw: Option<&RawValue>) -> Result<Option<$name>, String> {
                let Some(word) = string(raw, $field)? else {
                    return Ok(None);
                };
                Self::ALL
                    .iter()
                    .find(|(text, _)| *text == word)
                    .map(|(_, v)| Some(*v))
                    .ok_or_else(|| one_of($field, Self::ALL.iter().map(|(text, _)| *text)))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

words!(
    /// `quality`: `auto`, `low`/`medium`/`high` (GPT image models), `standard`/`hd`
    /// (DALL·E).
    Quality, "quality",
    [Auto = "auto", Low = "low", Medium = "medium", High = "high", Standard = "standard", Hd = "hd"]
);
words!(
    /// `response_format`.
    ResponseFormat, "response_format",
    [
        /// A link to the image.
        Url = "url",
        /// The image inline, in base64.
        B64Json = "b64_json",
    ]
);
words!(
    /// `output_format` (GPT image models).
    OutputFormat, "output_format", [Png = "png", Jpeg = "jpeg", Webp = "webp"]
);
words!(
    /// `background` (GPT image models).
    Background, "background", [Transparent = "transparent", Opaque = "opaque", Auto = "auto"]
);
words!(
    /// `style` (DALL·E 3).
    Style, "style", [Vivid = "vivid", Natural = "natural"]
);

/// "`field` must be one of `a`, `b` or `c`".
fn one_of<'a>(field: &str, words: impl Iterator<Item = &'a str>) -> String {
    let words: Vec<String> = words.map(|w| format!("\"{w}\"")).collect();
    let (last, rest) = words.split_last().expect("a word set is never empty");
    format!("{field} must be one of {} or {last}", rest.join(", "))
}

/// A string field (`null` counts as absent).
fn string(raw: Option<&RawValue>, field: &str) -> Result<Option<String>, String> {
    raw.map(|r| serde_json::from_str::<String>(r.get()))
        .transpose()
        .map_err(|_| format!("{field} must be a string"))
}

/// A required string field that must not be blank.
fn required(raw: Option<&RawValue>, field: &str) -> Result<String, String> {
    let text = string(raw, field)?.ok_or_else(|| format!("{field} is required"))?;
    if text.trim().is_empty() {
        return Err(format!("{field} must not be empty"));
    }
    Ok(text)
}

impl GenerateRequest {
    /// Parses and checks a generations body. Every message starts with the field at fault
    /// (`n must be an integer from 1 to 10`); `null` counts as absent.
    pub fn parse(body: &[u8]) -> Result<Self, String> {
        let wire: GenerateWire = parse_request(body)?;
        let n = match wire.n {
            None => 1,
            Some(raw) => serde_json::from_str::<u8>(raw.get())
                .ok()
                .filter(|n| (1..=10).contains(n))
                .ok_or("n must be an integer from 1 to 10")?,
        };
        let size = match string(wire.size, "size")? {
            None => Size::Auto,
            Some(s) => Size::parse(&s).ok_or_else(|| {
                format!(
                    "size must be \"auto\" or WIDTHxHEIGHT in pixels (such as \"1024x1024\"), \
                     not \"{s}\""
                )
            })?,
        };
        let stream = match wire.stream {
            None => false,
            Some(raw) => serde_json::from_str::<bool>(raw.get())
                .map_err(|_| "stream must be a boolean".to_string())?,
        };
        Ok(GenerateRequest {
            model: required(wire.model, "model")?,
            prompt: required(wire.prompt, "prompt")?,
            n,
            size,
            quality: Quality::parse(wire.quality)?,
            response_format: ResponseFormat::parse(wire.response_format)?,
            output_format: OutputFormat::parse(wire.output_format)?,
            background: Background::parse(wire.background)?,
            style: Style::parse(wire.style)?,
            user: string(wire.user, "user")?,
            stream,
        })
    }
}

impl Size {
    fn parse(s: &str) -> Option<Size> {
        if s == "auto" {
            return Some(Size::Auto);
        }
        let edge = |e: &str| {
            let plain =
                !e.is_empty() && !e.starts_with('0') && e.bytes().all(|b| b.is_ascii_digit());
            e.parse::<u32>().ok().filter(|v| plain && *v <= MAX_EDGE)
        };
        let (w, h) = s.split_once('x')?;
        Some(Size::Pixels {
            width: edge(w)?,
            height: edge(h)?,
        })
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Size::Auto => f.write_str("auto"),
            Size::Pixels { width, height } => write!(f, "{width}x{height}"),
        }
    }
}

#[derive(Deserialize)]
#[serde(expecting = "a JSON object")]
struct GenerateWire<'a> {
    #[serde(borrow, default)]
    model: Option<&'a RawValue>,
    #[serde(borrow, default)]
    prompt: Option<&'a RawValue>,
    #[serde(borrow, default)]
    n: Option<&'a RawValue>,
    #[serde(borrow, default)]
    size: Option<&'a RawValue>,
    #[serde(borrow, default)]
    quality: Option<&'a RawValue>,
    #[serde(borrow, default)]
    response_format: Option<&'a RawValue>,
    #[serde(borrow, default)]
    output_format: Option<&'a RawValue>,
    #[serde(borrow, default)]
    background: Option<&'a RawValue>,
    #[serde(borrow, default)]
    style: Option<&'a RawValue>,
    #[serde(borrow, default)]
    user: Option<&'a RawValue>,
    #[serde(borrow, default)]
    stream: Option<&'a RawValue>,
}

// ---------------------------------------------------------------------------------------
// To Gemini

/// The aspect ratios every Gemini image model takes (`imageConfig.aspectRatio`).
const ASPECT_RATIOS: [(&str, f64); 10] = [
    ("1:1", 1.0),
    ("2:3", 2.0 / 3.0),
    ("3:2", 3.0 / 2.0),
    ("3:4", 3.0 / 4.0),
    ("4:3", 4.0 / 3.0),
    ("4:5", 4.0 / 5.0),
    ("5:4", 5.0 / 4.0),
    ("9:16", 9.0 / 16.0),
    ("16:9", 16.0 / 9.0),
    ("21:9", 21.0 / 9.0),
];

/// The Gemini aspect ratio nearest to `width`:`height` (compared as logarithms, so 2:1
/// and 1:2 are equally far from 1:1).
fn aspect_ratio(width: u32, height: u32) -> &'static str {
    let want = (f64::from(width) / f64::from(height)).ln();
    ASPECT_RATIOS
        .iter()
        .min_by(|a, b| {
            let da = (a.1.ln() - want).abs();
            let db = (b.1.ln() - want).abs();
            da.total_cmp(&db)
        })
        .map(|(name, _)| *name)
        .expect("the table is not empty")
}

/// `imageConfig.imageSize` for a size: the smallest Gemini tier (1K ≈ 1024², 2K ≈ 2048²,
/// 4K ≈ 4096² pixels) that holds the request's pixel count, the 1K tier stretched to
/// 1792x1024 so that every fixed OpenAI size keeps Gemini's default (1K;
/// `gemini-2.5-flash-image` makes no other). `None`: leave the default.
fn image_size(width: u32, height: u32) -> Option<&'static str> {
    let pixels = u64::from(width) * u64::from(height);
    match pixels {
        p if p <= 1792 * 1024 => None,
        p if p <= 2048 * 2048 => Some("2K"),
        _ => Some("4K"),
    }
}

/// A Gemini `generateContent` body asking image model `model` for one image of `req`.
/// Gemini image models refuse `candidateCount` above 1: send the body `req.n` times and
/// merge the replies with [`from_gemini_replies`].
///
/// `size` becomes the nearest `imageConfig.aspectRatio` (Gemini picks the pixels for that
/// ratio, so the image need not be exactly `WIDTHxHEIGHT`) and, past 1792x1024 pixels, an
/// `imageSize`; `auto` leaves both to the model. `quality`, `style`, `output_format`
/// (the Gemini API has no setting for it; the reply's `output_format` says what came), `user` and
/// `response_format` (the router's business) are not sent. Refused, with messages naming
/// the field: `background: transparent` (Gemini's images have no alpha channel),
/// `stream: true`, and Imagen models.
pub fn to_gemini(req: &GenerateRequest, model: &str) -> Result<Bytes, String> {
    if model.starts_with("imagen") {
        return Err(format!(
            "model {model} is an Imagen model, which Gemini serves through :predict, not \
             generateContent; image generation is translated for Gemini image models only"
        ));
    }
    if req.background == Some(Background::Transparent) {
        return Err(
            "background \"transparent\" is not supported by gemini backends: their images \
             have no alpha channel"
                .into(),
        );
    }
    if req.stream {
        return Err("stream is not supported by gemini image backends".into());
    }
    let image_config = match req.size {
        Size::Auto => None,
        Size::Pixels { width, height } => Some(ImageConfig {
            aspect_ratio: aspect_ratio(width, height),
            image_size: image_size(width, height),
        }),
    };
    Ok(to_bytes(&GeminiRequest {
        contents: [GeminiContent {
            role: "user",
            parts: [GeminiText { text: &req.prompt }],
        }],
        generation_config: GenerationConfig {
            response_modalities: ["TEXT", "IMAGE"],
            image_config,
        },
    }))
}

#[derive(Serialize)]
struct GeminiRequest<'a> {
    contents: [GeminiContent<'a>; 1],
    #[serde(rename = "generationConfig")]
    generation_config: GenerationConfig,
}

#[derive(Serialize)]
struct GeminiContent<'a> {
    role: &'static str,
    parts: [GeminiText<'a>; 1],
}

#[derive(Serialize)]
struct GeminiText<'a> {
    text: &'a str,
}

#[derive(Serialize)]
struct GenerationConfig {
    #[serde(rename = "responseModalities")]
    response_modalities: [&'static str; 2],
    #[serde(rename = "imageConfig", skip_serializing_if = "Option::is_none")]
    image_config: Option<ImageConfig>,
}

#[derive(Serialize)]
struct ImageConfig {
    #[serde(rename = "aspectRatio")]
    aspect_ratio: &'static str,
    #[serde(rename = "imageSize", skip_serializing_if = "Option::is_none")]
    image_size: Option<&'static str>,
}

// ---------------------------------------------------------------------------------------
// From Gemini

mod gemini_reply;
pub use gemini_reply::{from_gemini, from_gemini_replies};

// ---------------------------------------------------------------------------------------
// Hosting: b64_json → url

/// Standard base64, padding optional (the OpenAI and Gemini APIs both pad).
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The images of an OpenAI images reply that carry `b64_json`, decoded: each with its
/// position in `data` and its MIME type (from the image's first bytes, else the reply's
/// `output_format`, else `application/octet-stream`). Items that already have a `url` are
/// left out. For `response_format: url`: the router hosts these and calls [`with_urls`].
pub fn b64_images(reply: &[u8]) -> Result<Vec<(usize, Bytes, String)>, String> {
    const WHAT: &str = "images reply";
    let wire: ImagesReplyWire = parse_reply(reply, WHAT)?;
    let fallback = wire
        .output_format
        .as_deref()
        .and_then(|f| format_mime(f.trim_start_matches("image/")));
    let mut images = Vec::new();
    for (i, item) in wire.data.unwrap_or_default().iter().enumerate() {
        let Some(raw) = item.b64_json else { continue };
        // Borrowed unless the string has escapes (base64 has none but a `\/`).
        let text: Cow<str> = match serde_json::from_str::<&str>(raw.get()) {
            Ok(s) => Cow::Borrowed(s),
            Err(_) => Cow::Owned(
                serde_json::from_str::<String>(raw.get())
                    .map_err(|_| format!("{WHAT}: data[{i}].b64_json must be a string"))?,
            ),
        };
        let image = BASE64
            .decode(text.as_bytes())
            .map_err(|e| format!("{WHAT}: data[{i}].b64_json is not base64: {e}"))?;
        let mime = sniff(&image)
            .or(fallback)
            .unwrap_or("application/octet-stream");
        images.push((i, Bytes::from(image), mime.to_string()));
    }
    Ok(images)
}

/// An OpenAI images reply with each `b64_json` (in [`b64_images`]' order) replaced by the
/// next of `urls`, as `url` in the same place; every other member is kept verbatim and in
/// order. `urls` must have one URL per `b64_json` image.
pub fn with_urls(reply: &[u8], urls: &[String]) -> Result<Bytes, String> {
    const WHAT: &str = "images reply";
    let top: Members = parse_reply(reply, WHAT)?;
    let mut items: Vec<Members> = match top.get("data") {
        None => Vec::new(),
        Some(raw) => serde_json::from_str(raw.get())
            .map_err(|_| format!("{WHAT}: data must be an array of objects"))?,
    };
    let count = items.iter().filter(|m| m.has_b64()).count();
    if count != urls.len() {
        return Err(format!(
            "urls: {} given for {count} base64 images",
            urls.len()
        ));
    }
    let mut next = urls.iter();
    let mut out = Vec::with_capacity(256 + urls.iter().map(|u| u.len() + 16).sum::<usize>());
    out.push(b'{');
    for (k, (key, value)) in top.0.iter().enumerate() {
        if k > 0 {
            out.push(b',');
        }
        write_key(&mut out, key);
        if key != "data" {
            out.extend_from_slice(value.get().as_bytes());
            continue;
        }
        out.push(b'[');
        for (j, item) in items.iter_mut().enumerate() {
            if j > 0 {
                out.push(b',');
            }
            let url = if item.has_b64() { next.next() } else { None };
            item.write(&mut out, url.map(String::as_str));
        }
        out.push(b']');
    }
    out.push(b'}');
    Ok(Bytes::from(out))
}

/// The MIME type of an image from its first bytes (PNG, JPEG, WebP, GIF).
fn sniff(image: &[u8]) -> Option<&'static str> {
    if image.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if image.starts_with(b"\xff\xd8\xff") {
        Some("image/jpeg")
    } else if image.len() >= 12 && &image[..4] == b"RIFF" && &image[8..12] == b"WEBP" {
        Some("image/webp")
    } else if image.starts_with(b"GIF87a") || image.starts_with(b"GIF89a") {
        Some("image/gif")
    } else {
        None
    }
}

/// The MIME type of an `output_format` word.
fn format_mime(format: &str) -> Option<&'static str> {
    match format {
        "png" => Some("image/png"),
        "jpeg" | "jpg" => Some("image/jpeg"),
        "webp" => Some("image/webp"),
        _ => None,
    }
}

fn write_key(out: &mut Vec<u8>, key: &str) {
    serde_json::to_writer(&mut *out, key).expect("writing to a Vec cannot fail");
    out.push(b':');
}

#[derive(Deserialize)]
struct ImagesReplyWire<'a> {
    #[serde(borrow, default)]
    data: Option<Vec<ImageItemWire<'a>>>,
    #[serde(default)]
    output_format: Option<String>,
}

#[derive(Deserialize)]
struct ImageItemWire<'a> {
    #[serde(borrow, default)]
    b64_json: Option<&'a RawValue>,
}

/// A JSON object's members in their order, values verbatim.
struct Members<'a>(Vec<(String, &'a RawValue)>);

impl<'a> Members<'a> {
    fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    /// Whether the item carries an image in `b64_json` (not `null`).
    fn has_b64(&self) -> bool {
        self.get("b64_json").is_some_and(|v| v.get() != "null")
    }

    /// Writes the object; with `url`, `b64_json` becomes `url` in its place and any other
    /// `url` member is dropped.
    fn write(&self, out: &mut Vec<u8>, url: Option<&str>) {
        out.push(b'{');
        let mut first = true;
        for (key, value) in &self.0 {
            if url.is_some() && key == "url" {
                continue;
            }
            if !first {
                out.push(b',');
            }
            first = false;
            match url {
                Some(url) if key == "b64_json" => {
                    write_key(out, "url");
                    serde_json::to_writer(&mut *out, url).expect("writing to a Vec cannot fail");
                }
                _ => {
                    write_key(out, key);
                    out.extend_from_slice(value.get().as_bytes());
                }
            }
        }
        out.push(b'}');
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Members<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Members<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members<'a>, A::Error> {
                let mut members = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, &'de RawValue>()? {
                    members.push((k, v));
                }
                Ok(Members(members))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

// ---------------------------------------------------------------------------------------
// Multipart uploads (edits, variations)

/// The characters RFC 2046 (section 5.1.1) allows in a boundary besides letters and
/// digits; a space is allowed too, but not last.
const BOUNDARY_SPECIALS: &[u8] = b"'()+_,-./:=? ";

/// The boundary of a `multipart/form-data` Content-Type (`edits` and `variations` bodies
/// are passed on unread; this refuses a bad upload early). The media type and parameter
/// names are matched without regard to case, the value may be quoted, and RFC 2046's rule
/// holds: 1–70 characters of letters, digits and `'()+_,-./:=?` or space, not ending in a
/// space.
pub fn boundary(content_type: &str) -> Result<String, String> {
    let (media, mut rest) = content_type.split_once(';').unwrap_or((content_type, ""));
    if !media.trim().eq_ignore_ascii_case("multipart/form-data") {
        return Err(format!(
            "Content-Type must be multipart/form-data, not \"{}\"",
            media.trim()
        ));
    }
    let mut found: Option<String> = None;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ';']);
        if rest.is_empty() {
            break;
        }
        let (name, value, tail) = parameter(rest)?;
        rest = tail;
        if name.eq_ignore_ascii_case("boundary") {
            if found.is_some() {
                return Err("boundary is given twice in the Content-Type".into());
            }
            found = Some(value);
        }
    }
    let b = found.ok_or("boundary is missing from the multipart/form-data Content-Type")?;
    if b.is_empty() || b.len() > 70 {
        return Err(format!(
            "boundary must be 1 to 70 characters long (RFC 2046), not {}",
            b.len()
        ));
    }
    if let Some(c) = b.chars().find(|c| {
        !(c.is_ascii_alphanumeric() || (c.is_ascii() && BOUNDARY_SPECIALS.contains(&(*c as u8))))
    }) {
        return Err(format!(
            "boundary has {c:?}, which RFC 2046 does not allow (letters, digits, space and \
             '()+_,-./:=? only)"
        ));
    }
    if b.ends_with(' ') {
        return Err("boundary must not end with a space (RFC 2046)".into());
    }
    Ok(b)
}

/// One `name=value` parameter at the start of `s` (its leading separators gone): the name,
/// the value (a quoted string unquoted), and what follows.
fn parameter(s: &str) -> Result<(&str, String, &str), String> {
    let (name, after) = s
        .split_once('=')
        .ok_or_else(|| format!("Content-Type parameter {:?} has no value", s.trim()))?;
    let name = name.trim();
    let after = after.trim_start_matches([' ', '\t']);
    let Some(quoted) = after.strip_prefix('"') else {
        let end = after.find([';', ' ', '\t']).unwrap_or(after.len());
        return Ok((name, after[..end].to_string(), &after[end..]));
    };
    let mut value = String::new();
    let mut chars = quoted.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((name, value, &quoted[i + 1..])),
            '\\' => match chars.next() {
                Some((_, escaped)) => value.push(escaped),
                None => break,
            },
            c => value.push(c),
        }
    }
    Err(format!(
        "Content-Type parameter {name} has an unterminated quoted value"
    ))
}

#[cfg(test)]
mod tests;
