//! JSON input helpers shared by the embeddings, rerank and sparse codecs: parsing client
//! requests and backend replies with errors that name the field at fault, and OpenAI's
//! `input` shape (one string, or a list of strings or token ids).

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use bytes::Bytes;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::error::Category;
use serde_json::value::RawValue;

/// Serializes a wire value the codecs built themselves (plain structs, strings, numbers
/// and verbatim JSON: serialization cannot fail).
pub(super) fn to_bytes<T: Serialize>(value: &T) -> Bytes {
    Bytes::from(serde_json::to_vec(value).expect("wire types always serialize"))
}

/// serde_json's message without its ` at line L column C` suffix: the messages the codecs
/// raise name the field themselves, and a position in a one-line body helps nobody.
fn message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    match text.strip_suffix(&suffix) {
        Some(stripped) => stripped.to_owned(),
        None => text,
    }
}

/// Parses a client request body, which must be a JSON object (serde would also read a
/// struct from an array); a data error keeps the message naming the field, a body that is
/// not JSON says so.
pub(super) fn parse_request<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, String> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|b| *b != b'{') {
        return Err("request body must be a JSON object".into());
    }
    serde_json::from_slice(body).map_err(|e| match e.classify() {
        Category::Data => message(&e),
        _ => format!("request body is not valid JSON: {}", message(&e)),
    })
}

/// Parses a backend reply; errors start with `what` (`gemini reply`) so a 502 says whose
/// answer was wrong.
pub(super) fn parse_reply<'a, T: Deserialize<'a>>(
    reply: &'a [u8],
    what: &str,
) -> Result<T, String> {
    serde_json::from_slice(reply).map_err(|e| match e.classify() {
        Category::Data => format!("{what}: {}", message(&e)),
        _ => format!("{what} is not valid JSON: {}", message(&e)),
    })
}

/// Deserializes a field, replacing serde's type error (which never names the field) with
/// `message`. Used through small per-field `deserialize_with` functions.
pub(super) fn named<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
    message: &'static str,
) -> Result<T, D::Error> {
    T::deserialize(d).map_err(|_| de::Error::custom(message))
}

/// Whether a JSON value is a number (valid JSON starting with `-` or a digit is one).
pub(super) fn is_number(raw: &RawValue) -> bool {
    raw.get()
        .as_bytes()
        .first()
        .is_some_and(|b| *b == b'-' || b.is_ascii_digit())
}

/// Whether a JSON value is an array of numbers, checked without allocating.
pub(super) fn is_number_array(raw: &RawValue) -> bool {
    struct Numbers;
    impl<'de> Deserialize<'de> for Numbers {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Numbers;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("an array of numbers")
                }
                fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Numbers, A::Error> {
                    while seq.next_element::<f64>()?.is_some() {}
                    Ok(Numbers)
                }
            }
            d.deserialize_seq(V)
        }
    }
    serde_json::from_str::<Numbers>(raw.get()).is_ok()
}

/// OpenAI's `input` (and the router's sparse `input`): one string, or an array whose items
/// are strings or token ids. Wrong shapes are kept as [`Input::Invalid`] /
/// [`Item::Invalid`] so the caller can name the offending index instead of serde.
pub(super) enum Input<'a> {
    /// A single string.
    One(Cow<'a, str>),
    /// An array; a bare array of integers is one token-id list (its items are
    /// [`Item::Token`]).
    Many(Vec<Item<'a>>),
    /// Neither (a number, an object, a boolean).
    Invalid,
}

/// One element of an [`Input::Many`].
pub(super) enum Item<'a> {
    /// A string.
    Text(Cow<'a, str>),
    /// A token id: the whole input is one list of token ids.
    Token,
    /// A list of token ids.
    Tokens,
    /// Anything else.
    Invalid,
}

impl Input<'_> {
    /// Checks the shape: strings, or (when `tokens` is allowed) token ids; no empty input or
    /// empty string. `field` is the request's name for it (`input`, TEI's `inputs`);
    /// `backend` names who refuses token ids.
    pub(super) fn check(&self, field: &str, tokens: bool, backend: &str) -> Result<(), String> {
        let refuse =
            |at: &str| format!("{at} is a list of token ids; {backend} backends take text only");
        match self {
            Input::Invalid => Err(format!("{field} must be a string or an array of strings")),
            Input::One(s) if s.is_empty() => Err(format!("{field} must not be an empty string")),
            Input::One(_) => Ok(()),
            Input::Many(items) if items.is_empty() => {
                Err(format!("{field} must not be an empty array"))
            }
            Input::Many(items) => {
                if items.iter().all(|i| matches!(i, Item::Token)) {
                    return if tokens { Ok(()) } else { Err(refuse(field)) };
                }
                for (i, item) in items.iter().enumerate() {
                    match item {
                        Item::Text(s) if s.is_empty() => {
                            return Err(format!("{field}[{i}] must not be an empty string"))
                        }
                        Item::Text(_) => {}
                        Item::Tokens if tokens => {}
                        Item::Tokens => return Err(refuse(&format!("{field}[{i}]"))),
                        Item::Token | Item::Invalid => {
                            return Err(format!("{field}[{i}] must be a string"))
                        }
                    }
                }
                Ok(())
            }
        }
    }
}

/// The texts of `input` for a backend that embeds text only, and whether the client sent a
/// single string (rather than a list).
pub(super) fn texts<'b>(
    input: Option<&'b Input<'_>>,
    backend: &str,
) -> Result<(Vec<&'b str>, bool), String> {
    let input = input.ok_or("input is required")?;
    input.check("input", false, backend)?;
    Ok(match input {
        Input::One(s) => (vec![s.as_ref()], true),
        Input::Many(items) => (
            items
                .iter()
                .filter_map(|i| match i {
                    Item::Text(s) => Some(s.as_ref()),
                    _ => None,
                })
                .collect(),
            false,
        ),
        Input::Invalid => unreachable!("check refuses it"),
    })
}

/// Visitor methods that turn every JSON type a visitor does not take into `$invalid`
/// (draining objects so parsing carries on).
macro_rules! otherwise_invalid {
    ($value:ty, $invalid:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<$value, E> {
            Ok($invalid)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<$value, E> {
            Ok($invalid)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<$value, E> {
            Ok($invalid)
        }
        fn visit_unit<E: de::Error>(self) -> Result<$value, E> {
            Ok($invalid)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<$value, A::Error> {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok($invalid)
        }
    };
}

impl<'de: 'a, 'a> Deserialize<'de> for Input<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Input<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or an array")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Input<'a>, E> {
                Ok(Input::One(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Input<'a>, E> {
                Ok(Input::One(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Input<'a>, E> {
                Ok(Input::One(Cow::Owned(v)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Input<'a>, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
                while let Some(item) = seq.next_element::<Item<'a>>()? {
                    items.push(item);
                }
                Ok(Input::Many(items))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Input<'a>, E> {
                Ok(Input::Invalid)
            }
            otherwise_invalid!(Input<'a>, Input::Invalid);
        }
        d.deserialize_any(V(PhantomData))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Item<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Item<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or a list of token ids")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Item<'a>, E> {
                Ok(Item::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Item<'a>, E> {
                Ok(Item::Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Item<'a>, E> {
                Ok(Item::Text(Cow::Owned(v)))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Item<'a>, E> {
                Ok(Item::Token)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Item<'a>, A::Error> {
                let mut all_ids = true;
                while let Some(id) = seq.next_element::<&'de RawValue>()? {
                    all_ids &= serde_json::from_str::<u32>(id.get()).is_ok();
                }
                Ok(if all_ids { Item::Tokens } else { Item::Invalid })
            }
            otherwise_invalid!(Item<'a>, Item::Invalid);
        }
        d.deserialize_any(V(PhantomData))
    }
}
