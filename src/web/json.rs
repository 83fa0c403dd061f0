//! Request bodies: a JSON extractor whose errors name the offending field.
//!
//! actix's own `web::Json` reports "Json deserialize error" without the path; a typo in
//! a rule name must come back as a 422 that names it, and a syntax error as a 400.

pub use crate::error::parse_json;
use crate::error::AppError;
use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use serde::de::{DeserializeOwned, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use std::marker::PhantomData;

/// Bodies above this are refused with 413 before they are parsed.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

pub struct Json<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = read_body(req, payload, MAX_BODY_BYTES);
        Box::pin(async move { parse_json(&body.await?).map(Json) })
    }
}

/// A body that is a list of `T` or an object `O` (`[…]` or `{"facilitators": […], …}`),
/// told apart by its first token. Unlike `#[serde(untagged)]`, which can only say "data
/// did not match any variant", an error inside names its field and what it takes.
#[derive(Debug)]
pub enum ListOrObject<T, O> {
    List(Vec<T>),
    Object(O),
}

impl<'de, T: Deserialize<'de>, O: Deserialize<'de>> Deserialize<'de> for ListOrObject<T, O> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Either<T, O>(PhantomData<(T, O)>);

        impl<'de, T: Deserialize<'de>, O: Deserialize<'de>> Visitor<'de> for Either<T, O> {
            type Value = ListOrObject<T, O>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a list or an object")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                Vec::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))
                    .map(ListOrObject::List)
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                O::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(ListOrObject::Object)
            }
        }

        deserializer.deserialize_any(Either(PhantomData))
    }
}

/// Reads the whole body, refusing more than `limit` bytes with 413.
pub fn read_body(
    req: &HttpRequest,
    payload: &mut Payload,
    limit: usize,
) -> LocalBoxFuture<'static, Result<web::Bytes, AppError>> {
    let declared_too_large = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok())
        .is_some_and(|length| length > limit);
    let mut payload = payload.take();
    Box::pin(async move {
        use futures_util::StreamExt;
        if declared_too_large {
            return Err(AppError::PayloadTooLarge(limit));
        }
        let mut body = web::BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|error| AppError::Malformed(error.to_string()))?;
            if body.len() + chunk.len() > limit {
                return Err(AppError::PayloadTooLarge(limit));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        size: u32,
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        name: String,
        inner: Inner,
    }

    fn fields(error: AppError) -> BTreeMap<String, String> {
        match error {
            AppError::Validation(fields) => fields,
            other => panic!("expected validation error, got {other:?}"),
        }
    }

    #[test]
    fn unknown_nested_field_is_named() {
        let error = parse_json::<Outer>(br#"{"name":"a","inner":{"size":1,"sise":2}}"#)
            .expect_err("unknown field");
        assert!(fields(error).contains_key("inner.sise"));
    }

    #[test]
    fn wrong_type_names_the_field() {
        let error =
            parse_json::<Outer>(br#"{"name":"a","inner":{"size":-1}}"#).expect_err("negative");
        assert!(fields(error).contains_key("inner.size"));
    }

    #[test]
    fn missing_field_is_named() {
        let error = parse_json::<Outer>(br#"{"inner":{"size":1}}"#).expect_err("missing");
        assert_eq!(
            fields(error).get("name").map(String::as_str),
            Some("is required")
        );
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Wrapped {
        inners: Vec<Inner>,
    }

    #[test]
    fn an_error_inside_a_list_or_an_object_names_its_field() {
        type Body = ListOrObject<Inner, Wrapped>;
        let listed = parse_json::<Body>(br#"[{"size":1},{"size":"big"}]"#).expect_err("list");
        assert!(fields(listed).contains_key("[1].size"));
        let wrapped = parse_json::<Body>(br#"{"inners":[{"size":-2}]}"#).expect_err("object");
        assert!(fields(wrapped).contains_key("inners[0].size"));
        assert!(matches!(
            parse_json::<Body>(br#"[{"size":1}]"#),
            Ok(ListOrObject::List(list)) if list.len() == 1
        ));
        let neither = parse_json::<Body>(b"3").expect_err("a number");
        assert_eq!(
            fields(neither).get("body").map(String::as_str),
            Some("invalid type: integer `3`, expected a list or an object")
        );
    }

    #[test]
    fn syntax_error_is_malformed() {
        let error = parse_json::<Outer>(br#"{"name": "#).expect_err("syntax");
        assert!(matches!(error, AppError::Malformed(_)));
    }
}
