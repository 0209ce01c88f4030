//! OAuth 1.0a as a client signs it, for tests that sign by hand.

/// Signs a request as an OAuth 1.0a client would and returns the `Authorization` header value.
/// `extra` holds protocol parameters beyond the standard ones (`oauth_token`, `oauth_verifier`,
/// `oauth_callback`); `form` the body parameters, which are signed too.
#[allow(clippy::too_many_arguments)]
pub fn oauth_header(
    method: &str,
    url: &str,
    consumer_key: &str,
    consumer_secret: &str,
    token_secret: &str,
    extra: &[(&str, &str)],
    form: &[(&str, &str)],
    nonce: &str,
    timestamp: i64,
) -> String {
    signed_header(
        method,
        url,
        (consumer_key, consumer_secret, token_secret),
        extra,
        form,
        (nonce, timestamp),
        false,
    )
}

/// Signs as npm `oauth-1.0a` does: the query's names as the URL writes them (not
/// percent-decoded), the values decoded; no form body.
pub fn oauth_header_undecoded_query_names(
    method: &str,
    url: &str,
    (consumer_key, consumer_secret, token_secret): (&str, &str, &str),
    extra: &[(&str, &str)],
) -> String {
    signed_header(
        method,
        url,
        (consumer_key, consumer_secret, token_secret),
        extra,
        &[],
        (&integration_host::crypto::random_string(24), unix_now()),
        true,
    )
}

fn signed_header(
    method: &str,
    url: &str,
    (consumer_key, consumer_secret, token_secret): (&str, &str, &str),
    extra: &[(&str, &str)],
    form: &[(&str, &str)],
    (nonce, timestamp): (&str, i64),
    undecoded_query_names: bool,
) -> String {
    use integration_host::oauth;
    let mut protocol: Vec<(String, String)> = vec![
        ("oauth_consumer_key".into(), consumer_key.into()),
        ("oauth_nonce".into(), nonce.into()),
        ("oauth_signature_method".into(), "HMAC-SHA256".into()),
        ("oauth_timestamp".into(), timestamp.to_string()),
        ("oauth_version".into(), "1.0".into()),
    ];
    protocol.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let parsed = url::Url::parse(url).unwrap();
    let mut signed = protocol.clone();
    if undecoded_query_names {
        signed.extend(parsed.query().unwrap_or_default().split('&').map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = percent_encoding::percent_decode_str(v)
                .decode_utf8()
                .unwrap();
            (k.to_owned(), v.into_owned())
        }));
    } else {
        signed.extend(
            parsed
                .query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned())),
        );
    }
    signed.extend(form.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let base = oauth::base_string(method, &oauth::SignedUrl::from(&parsed), &signed);
    let signature = oauth::sign(
        oauth::SignatureMethod::HmacSha256,
        consumer_secret,
        token_secret,
        &base,
    );
    protocol.push(("oauth_signature".into(), signature));
    let fields: Vec<String> = protocol
        .iter()
        .map(|(k, v)| {
            format!(
                "{}=\"{}\"",
                oauth::percent_encode(k),
                oauth::percent_encode(v)
            )
        })
        .collect();
    format!("OAuth {}", fields.join(", "))
}

/// Current time, unix seconds.
pub fn unix_now() -> i64 {
    integration_host::clock::now()
}

/// The form posts a [`Recorder`] received, oldest first.
pub type Posts = std::sync::Arc<std::sync::Mutex<Vec<Vec<(String, String)>>>>;

/// The protocol parameters of an `Authorization: OAuth …` value made by [`oauth_header`], to
/// send them in a form body or query instead.
pub fn oauth_params(header: &str) -> Vec<(String, String)> {
    integration_host::oauth::parse_authorization(header).expect("a header made by oauth_header")
}
