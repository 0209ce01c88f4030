//! Outbound HTTP (the `http` feature): a small blocking client over the standard
//! `wasi:http/outgoing-handler`, which the host checks against the plugin's grant.
//!
//! The manifest asks where the plugin sends requests
//! (`[capabilities] outbound_http = ["https://hooks.example.com"]`) and the operator grants
//! what it may (`[plugins.grants.<id>] outbound_http = [...]`); a request outside both fails
//! with [`HttpError`] naming the WASI error (`HTTP-request-denied`, `destination-IP-prohibited`)
//! and no connection is made. Redirects are not followed: a `3xx` answer is returned as it is.
//!
//! ```ignore
//! use integration_host_sdk::http;
//!
//! let answer = http::Request::post("http://127.0.0.1:9000/hook", body)
//!     .header("content-type", "application/json")
//!     .send()?;
//! if answer.status >= 300 { /* … */ }
//! ```

use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, Scheme,
};
use wasip2::io::streams::StreamError;

/// A request to send.
#[derive(Debug, Clone)]
pub struct Request {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// An answer, read whole (up to the host's `plugins.http.max_response_kib`).
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Why a request got no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError(pub String);

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HttpError {}

impl From<HttpError> for crate::PluginError {
    fn from(e: HttpError) -> Self {
        crate::PluginError::Failed(e.0)
    }
}

fn failed(what: &str, e: impl std::fmt::Debug) -> HttpError {
    HttpError(format!("{what}: {e:?}"))
}

fn code(e: ErrorCode) -> HttpError {
    HttpError(match e {
        ErrorCode::HttpRequestDenied => {
            "HTTP-request-denied: the address is outside the plugin's outbound_http grant".into()
        }
        ErrorCode::DestinationIpProhibited => {
            "destination-IP-prohibited: the name resolves to an address the grant does not list"
                .into()
        }
        other => format!("{other:?}"),
    })
}

impl Request {
    /// A request with any method (`GET`, `POST`, …).
    pub fn new(method: &str, url: &str) -> Self {
        Self {
            method: method.to_owned(),
            url: url.to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn get(url: &str) -> Self {
        Self::new("GET", url)
    }

    pub fn post(url: &str, body: impl Into<Vec<u8>>) -> Self {
        Self::new("POST", url).body(body)
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets the body (sent with its `content-length`).
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Sends it and reads the whole answer, blocking this call until then (the host bounds the
    /// time by its limits and the call's timeout).
    pub fn send(self) -> Result<Response, HttpError> {
        #[cfg(not(target_family = "wasm"))]
        return crate::testing::host::http(&self);
        #[cfg(target_family = "wasm")]
        return self.send_wasi();
    }

    /// The method, upper-case as sent.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body.
    pub fn body_bytes(&self) -> &[u8] {
        &self.body
    }

    #[cfg_attr(not(target_family = "wasm"), allow(dead_code))]
    fn send_wasi(self) -> Result<Response, HttpError> {
        let (https, authority, path) = split_url(&self.url)?;
        let mut headers: Vec<(String, Vec<u8>)> = self
            .headers
            .iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), v.clone().into_bytes()))
            .collect();
        if !self.body.is_empty() && !headers.iter().any(|(n, _)| n == "content-length") {
            headers.push((
                "content-length".into(),
                self.body.len().to_string().into_bytes(),
            ));
        }
        let fields = Fields::from_list(&headers).map_err(|e| failed("invalid header", e))?;
        let request = OutgoingRequest::new(fields);
        let method = match self.method.to_ascii_uppercase().as_str() {
            "GET" => Method::Get,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            "PATCH" => Method::Patch,
            "HEAD" => Method::Head,
            "OPTIONS" => Method::Options,
            other => Method::Other(other.to_owned()),
        };
        request
            .set_method(&method)
            .map_err(|()| HttpError(format!("invalid method {}", self.method)))?;
        request
            .set_scheme(Some(if https { &Scheme::Https } else { &Scheme::Http }))
            .map_err(|()| HttpError("invalid scheme".into()))?;
        request
            .set_authority(Some(authority))
            .map_err(|()| HttpError(format!("invalid host {authority}")))?;
        request
            .set_path_with_query(Some(&path))
            .map_err(|()| HttpError(format!("invalid path {path}")))?;
        let body = request
            .body()
            .map_err(|()| HttpError("the request body is unavailable".into()))?;
        let pending = outgoing_handler::handle(request, None).map_err(code)?;
        // A refused request drops the body's reader: its own error says why, not the write's.
        let written = write_body(body, &self.body);
        pending.subscribe().block();
        let response = match pending.get() {
            Some(Ok(Ok(r))) => r,
            Some(Ok(Err(e))) => return Err(code(e)),
            Some(Err(())) | None => return Err(HttpError("the answer was taken twice".into())),
        };
        written?;
        let status = response.status();
        let headers = response
            .headers()
            .entries()
            .into_iter()
            .map(|(n, v)| (n, String::from_utf8_lossy(&v).into_owned()))
            .collect();
        let incoming = response
            .consume()
            .map_err(|()| HttpError("the answer's body is unavailable".into()))?;
        let mut body = Vec::new();
        {
            let stream = incoming
                .stream()
                .map_err(|()| HttpError("the answer's body is unavailable".into()))?;
            loop {
                match stream.blocking_read(64 * 1024) {
                    Ok(chunk) => body.extend_from_slice(&chunk),
                    Err(StreamError::Closed) => break,
                    Err(StreamError::LastOperationFailed(e)) => {
                        return Err(HttpError(format!(
                            "reading the answer failed: {}",
                            e.to_debug_string()
                        )));
                    }
                }
            }
        }
        let _ = IncomingBody::finish(incoming);
        Ok(Response {
            status,
            headers,
            body,
        })
    }
}

fn write_body(body: OutgoingBody, bytes: &[u8]) -> Result<(), HttpError> {
    {
        let stream = body
            .write()
            .map_err(|()| HttpError("the request body is unavailable".into()))?;
        for chunk in bytes.chunks(4096) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(|e| failed("sending the body", e))?;
        }
    }
    OutgoingBody::finish(body, None).map_err(code)
}

/// `scheme://authority/path?query` into its parts.
fn split_url(url: &str) -> Result<(bool, &str, String), HttpError> {
    let (https, rest) = if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else {
        return Err(HttpError(format!(
            "{url} is not an http:// or https:// URL"
        )));
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    if authority.is_empty() {
        return Err(HttpError(format!("{url} has no host")));
    }
    let path = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    };
    Ok((https, authority, path))
}
