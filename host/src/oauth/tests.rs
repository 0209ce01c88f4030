//! The published vectors, and properties of signing and collection.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use proptest::prelude::*;
use serde::Deserialize;

use super::*;

#[derive(Deserialize)]
struct Vectors {
    cases: Vec<Case>,
    base_string_cases: Vec<BaseCase>,
    base_string_uri_cases: Vec<(String, String)>,
    percent_encoding_cases: Vec<(String, String)>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    method: String,
    url: String,
    authorization: String,
    content_type: Option<String>,
    body: Option<String>,
    consumer_secret: String,
    token_secret: String,
    expected_signature: String,
}

#[derive(Deserialize)]
struct BaseCase {
    name: String,
    method: String,
    url: String,
    content_type: Option<String>,
    body: Option<String>,
    authorization: String,
    expected_normalized_parameters: String,
    expected_base_string: String,
}

fn vectors() -> Vectors {
    serde_json::from_str(include_str!("testdata/oauth1-signatures.json")).expect("vectors parse")
}

#[test]
fn every_published_signature_reproduces_and_verifies() {
    let v = vectors();
    assert!(!v.cases.is_empty());
    for case in v.cases {
        let url = SignedUrl::parse(&case.url).unwrap();
        let body = case.body.unwrap_or_default();
        let c = collect(
            &url,
            Some(&case.authorization),
            case.content_type.as_deref(),
            body.as_bytes(),
        )
        .unwrap();
        let method = SignatureMethod::parse(c.protocol("oauth_signature_method").unwrap())
            .expect("known method");
        let base = base_string(&case.method, &url, &c.signed);
        let sig = sign(method, &case.consumer_secret, &case.token_secret, &base);
        assert_eq!(sig, case.expected_signature, "{}", case.name);
        assert!(
            verify(
                method,
                &case.consumer_secret,
                &case.token_secret,
                &base,
                &case.expected_signature
            ),
            "{}",
            case.name
        );
        assert!(
            !verify(
                method,
                &case.consumer_secret,
                "wrong",
                &base,
                &case.expected_signature
            ),
            "{}",
            case.name
        );
    }
}

#[test]
fn the_published_base_strings_reproduce() {
    for case in vectors().base_string_cases {
        let url = SignedUrl::parse(&case.url).unwrap();
        let body = case.body.unwrap_or_default();
        let c = collect(
            &url,
            Some(&case.authorization),
            case.content_type.as_deref(),
            body.as_bytes(),
        )
        .unwrap();
        assert_eq!(
            normalize_parameters(&c.signed),
            case.expected_normalized_parameters,
            "{}",
            case.name
        );
        assert_eq!(
            base_string(&case.method, &url, &c.signed),
            case.expected_base_string,
            "{}",
            case.name
        );
        // realm is not signed; oauth_signature is kept apart.
        assert!(
            c.signed
                .iter()
                .all(|(k, _)| k != "realm" && k != "oauth_signature")
        );
        assert_eq!(c.signature.as_deref(), Some("djosJKDKJSD8743243/jdk33klY="));
    }
}

#[test]
fn base_string_uris_and_percent_encoding() {
    let v = vectors();
    for (input, expected) in v.base_string_uri_cases {
        assert_eq!(base_string_uri(&url::Url::parse(&input).unwrap()), expected);
        assert_eq!(SignedUrl::parse(&input).unwrap().base_uri(), expected);
    }
    for (input, expected) in v.percent_encoding_cases {
        assert_eq!(percent_encode(&input), expected);
    }
}

#[test]
fn header_tolerances() {
    // Lower-case scheme, unquoted values, a plus that is not a space, no spaces after commas.
    let p = parse_authorization("oauth oauth_consumer_key=abc,oauth_nonce=\"x+y\"").unwrap();
    assert_eq!(
        p,
        vec![
            ("oauth_consumer_key".to_owned(), "abc".to_owned()),
            ("oauth_nonce".to_owned(), "x+y".to_owned()),
        ]
    );
    assert!(matches!(
        parse_authorization("OAuth oauth_nonce=\"x"),
        Err(ParseError::Malformed(_))
    ));
    assert!(matches!(
        parse_authorization("OAuth oauth_nonce"),
        Err(ParseError::Malformed(_))
    ));
    assert!(matches!(
        parse_authorization("OAuth a=\"1\" b=\"2\""),
        Err(ParseError::Malformed(_))
    ));
    assert_eq!(parse_authorization("Bearer x"), Err(ParseError::NotOAuth));
    assert_eq!(
        parse_authorization("OAuth oauth_nonce=\"%FF\""),
        Err(ParseError::InvalidUtf8)
    );
}

#[test]
fn duplicate_protocol_parameters_are_refused_and_other_duplicates_kept() {
    let url = SignedUrl::parse("http://h/p?a=1&a=2").unwrap();
    let err = collect(
        &url,
        Some("OAuth oauth_nonce=\"1\", oauth_nonce=\"2\""),
        None,
        b"",
    )
    .unwrap_err();
    assert_eq!(err, ParseError::Duplicate("oauth_nonce".into()));
    let c = collect(&url, Some("OAuth oauth_nonce=\"1\""), None, b"").unwrap();
    assert_eq!(c.signed.iter().filter(|(k, _)| k == "a").count(), 2);
}

#[test]
fn a_header_parameter_repeated_in_the_body_counts_once() {
    // npm oauth-1.0a signs `oauth_verifier` once but sends it in the header and the body.
    let url = SignedUrl::parse("http://h/p").unwrap();
    let c = collect(
        &url,
        Some("OAuth oauth_nonce=\"n\", oauth_verifier=\"v\""),
        Some("application/x-www-form-urlencoded"),
        b"oauth_verifier=v&z=1",
    )
    .unwrap();
    assert_eq!(c.protocol("oauth_verifier").unwrap(), "v");
    assert_eq!(
        c.signed
            .iter()
            .filter(|(k, _)| k == "oauth_verifier")
            .count(),
        1
    );
    assert!(c.signed.iter().any(|(k, _)| k == "z"));
    let err = collect(
        &url,
        Some("OAuth oauth_verifier=\"v\""),
        Some("application/x-www-form-urlencoded"),
        b"oauth_verifier=w",
    )
    .unwrap_err();
    assert_eq!(err, ParseError::Duplicate("oauth_verifier".into()));
}

#[test]
fn protocol_parameters_may_come_from_the_body_or_the_query() {
    let url = SignedUrl::parse("http://h/p?oauth_nonce=q&x=1").unwrap();
    let c = collect(
        &url,
        None,
        Some("application/x-www-form-urlencoded; charset=UTF-8"),
        b"oauth_nonce=b&y=2",
    )
    .unwrap_err();
    assert_eq!(
        c,
        ParseError::Duplicate("oauth_nonce".into()),
        "two different values in the body and the query are ambiguous"
    );
    let c = collect(
        &url,
        None,
        Some("application/x-www-form-urlencoded"),
        b"oauth_token=t&y=2",
    )
    .unwrap();
    assert_eq!(c.protocol("oauth_nonce").unwrap(), "q");
    assert_eq!(
        c.protocol("oauth_token").unwrap(),
        "t",
        "sources are merged"
    );
    let c = collect(&url, None, Some("application/json"), b"oauth_nonce=b").unwrap();
    assert_eq!(
        c.protocol("oauth_nonce").unwrap(),
        "q",
        "a JSON body is not form-decoded"
    );
    assert!(c.signed.iter().all(|(k, _)| k != "y"));
}

fn param() -> impl Strategy<Value = (String, String)> {
    ("[a-zA-Z0-9_ +~%&=*é-]{0,12}", "[\\PC]{0,20}")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn sign_then_verify_round_trips(
        params in proptest::collection::vec(param(), 0..8),
        path in "/[a-zA-Z0-9/._~-]{0,20}",
        cs in "[a-z0-9]{32}",
        ts in "[a-z0-9]{0,32}",
        sha1 in any::<bool>(),
    ) {
        let method = if sha1 { SignatureMethod::HmacSha1 } else { SignatureMethod::HmacSha256 };
        let url = SignedUrl::parse(&format!("https://shop.example{path}")).unwrap();
        let base = base_string("POST", &url, &params);
        let sig = sign(method, &cs, &ts, &base);
        prop_assert!(verify(method, &cs, &ts, &base, &sig));
        // The order in which a client lists parameters does not matter.
        let mut reversed = params.clone();
        reversed.reverse();
        prop_assert_eq!(base_string("POST", &url, &reversed), base);
    }

    #[test]
    fn any_single_byte_change_fails(
        params in proptest::collection::vec(param(), 1..6),
        cs in "[a-z0-9]{32}",
        ts in "[a-z0-9]{32}",
        pos in any::<prop::sample::Index>(),
        delta in 1u8..=255,
        target in 0usize..3,
    ) {
        let url = SignedUrl::parse("https://shop.example/rest/V1/products").unwrap();
        let base = base_string("GET", &url, &params);
        let sig = sign(SignatureMethod::HmacSha256, &cs, &ts, &base);
        let flip = |s: &str| {
            let mut b = s.as_bytes().to_vec();
            let i = pos.index(b.len());
            b[i] = b[i].wrapping_add(delta);
            String::from_utf8_lossy(&b).into_owned()
        };
        let ok = match target {
            0 => verify(SignatureMethod::HmacSha256, &cs, &ts, &flip(&base), &sig),
            1 => verify(SignatureMethod::HmacSha256, &flip(&cs), &ts, &base, &sig),
            _ => {
                let changed = flip(&sig);
                // A change that decodes to the same bytes (none is expected with strict
                // padding) would not be a change of the signature.
                let same = B64.decode(changed.trim()).ok() == B64.decode(&sig).ok();
                !same && verify(SignatureMethod::HmacSha256, &cs, &ts, &base, &changed)
            }
        };
        prop_assert!(!ok);
    }

    /// Header values decode as the `percent_encoding` crate decodes them: escapes in either
    /// case, a `%` without two hex digits after it kept, and escapes that are not UTF-8 refused.
    #[test]
    fn header_values_decode_as_the_percent_encoding_crate(
        s in "([a-zA-Z0-9 +~.]|%[0-9a-fA-FgG]{0,2}|%[89A-Fa-f][0-9A-Fa-f]|\\PC){0,24}"
    ) {
        let value = s.replace('"', "");
        let expected_value =
            String::from_utf8(percent_encoding::percent_decode_str(&value).collect()).ok();
        match parse_authorization(&format!("OAuth oauth_nonce=\"{value}\"")) {
            Ok(p) => prop_assert_eq!(Some(p[0].1.clone()), expected_value),
            Err(e) => {
                prop_assert_eq!(e, ParseError::InvalidUtf8);
                prop_assert_eq!(expected_value, None);
            }
        }
    }

    #[test]
    fn the_header_parser_never_panics(s in "\\PC{0,200}") {
        let _ = parse_authorization(&format!("OAuth {s}"));
        let url = SignedUrl::parse("http://h/").unwrap();
        let _ = collect(&url, Some(&s), Some("application/x-www-form-urlencoded"), s.as_bytes());
    }
}
