//! Conversions between weft-core's types and the WIT's.

use weft_core::{Headers, Method, Version};

use crate::wit_types;

/// Header fields as the WIT carries them.
pub fn fields(headers: &Headers<'_>) -> Vec<wit_types::Field> {
    headers
        .iter()
        .map(|h| (h.name.to_owned(), h.value.to_vec()))
        .collect()
}

/// The host's fields borrowed in the core's shape.
pub fn borrow_fields(fields: &[wit_types::Field]) -> Vec<(&str, &[u8])> {
    fields
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_slice()))
        .collect()
}

/// Static fields (a handshake refusal's) as the WIT carries them.
pub fn static_fields(fields: &[(&str, &[u8])]) -> Vec<wit_types::Field> {
    fields
        .iter()
        .map(|&(name, value)| (name.to_owned(), value.to_vec()))
        .collect()
}

pub fn method(method: Method<'_>) -> wit_types::Method {
    match method {
        Method::Get => wit_types::Method::Get,
        Method::Head => wit_types::Method::Head,
        Method::Post => wit_types::Method::Post,
        Method::Put => wit_types::Method::Put,
        Method::Patch => wit_types::Method::Patch,
        Method::Delete => wit_types::Method::Delete,
        Method::Options => wit_types::Method::Options,
        Method::Connect => wit_types::Method::Connect,
        Method::Trace => wit_types::Method::Trace,
        Method::Other(token) => wit_types::Method::Other(token.to_owned()),
    }
}

/// The method's token as sent.
pub fn method_token(method: &wit_types::Method) -> &str {
    match method {
        wit_types::Method::Get => "GET",
        wit_types::Method::Head => "HEAD",
        wit_types::Method::Post => "POST",
        wit_types::Method::Put => "PUT",
        wit_types::Method::Patch => "PATCH",
        wit_types::Method::Delete => "DELETE",
        wit_types::Method::Options => "OPTIONS",
        wit_types::Method::Connect => "CONNECT",
        wit_types::Method::Trace => "TRACE",
        wit_types::Method::Other(token) => token,
    }
}

pub fn version(version: Version) -> wit_types::Version {
    match version {
        Version::Http10 => wit_types::Version::Http10,
        Version::Http11 => wit_types::Version::Http11,
    }
}
