//! `GET /rest/V1/integrations` with Magento's search criteria: every condition type, OR within a
//! group and AND across groups, sort orders, pages at the edges, the criteria echoed, the page
//! bounds, and the 400 answers, on whichever backend the suite runs.

use integration_host::domain::SetupType;
use integration_host::services::integration::{IntegrationForm, IntegrationInput};
use integration_host_tests::{Caller, TestApp, raw_execute, send_json, spawn_app, spawn_app_with};
use serde_json::{Value, json};

/// The integrations of these tests besides the caller (`Lister`, active): name, email,
/// status, setup type and resources. Creation times are set apart by a minute each, in this
/// order, from 2023-11-14 22:13:20 UTC.
const FIXTURES: &[(&str, &str, i64, i64, &[&str])] = &[
    (
        "Alpha Shop",
        "alpha@shop.example",
        1,
        0,
        &["Magento_Sales::sales"],
    ),
    (
        "Beta Shop",
        "beta@shop.example",
        2,
        0,
        &["Magento_Catalog::products"],
    ),
    ("Gamma Market", "gamma@market.example", 0, 1, &[]),
    (
        "delta_market",
        "delta@market.example",
        0,
        0,
        &["Magento_Sales::cancel"],
    ),
    ("deltaXmarket", "dx@market.example", 0, 0, &[]),
    ("Epsilon 100%", "", 1, 0, &[]),
];

async fn fixture() -> (TestApp, Caller) {
    fixture_with(|_| {}).await
}

async fn fixture_with(
    adjust: impl FnOnce(&mut integration_host::config::Settings),
) -> (TestApp, Caller) {
    let app = spawn_app_with(adjust).await;
    let caller = app
        .minted_integration("Lister", &["Magento_Integration::integrations"])
        .await;
    for (name, email, _, _, resources) in FIXTURES {
        let form = IntegrationForm {
            name: (*name).into(),
            email: Some((*email).to_owned()),
            resources: resources.iter().map(|r| r.to_string()).collect(),
            ..Default::default()
        };
        app.integrations
            .create(IntegrationInput::parse(&form, SetupType::Manual).unwrap())
            .await
            .unwrap();
    }
    for (i, (name, _, status, setup, _)) in FIXTURES.iter().enumerate() {
        let created = 1_700_000_000 + 60 * (i as i64 + 1);
        raw_execute(
            &app.db,
            &format!(
                "UPDATE integration SET status = {status}, setup_type = {setup}, created_at = {created}, \
                 updated_at = {} WHERE name = '{name}'",
                created + 3600
            ),
        )
        .await
        .unwrap();
    }
    raw_execute(&app.db, "UPDATE integration SET created_at = 1600000000, updated_at = 1600000000 WHERE name = 'Lister'")
        .await
        .unwrap();
    (app, caller)
}

/// `searchCriteria[…]` parameters from `(name after searchCriteria, value)` pairs, percent-encoded.
fn query(pairs: &[(&str, &str)]) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        q.append_pair(&format!("searchCriteria{k}"), v);
    }
    format!("/rest/V1/integrations?{}", q.finish())
}

/// One filter in group `g`, position `f`.
fn filter(g: usize, f: usize, field: &str, condition: &str, value: &str) -> Vec<(String, String)> {
    let at = format!("[filter_groups][{g}][filters][{f}]");
    vec![
        (format!("{at}[field]"), field.to_owned()),
        (format!("{at}[condition_type]"), condition.to_owned()),
        (format!("{at}[value]"), value.to_owned()),
    ]
}

async fn search(caller: &Caller, pairs: &[(String, String)]) -> (u16, Value) {
    let pairs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    send_json(caller.request("GET", &query(&pairs))).await
}

fn names(body: &Value) -> Vec<&str> {
    body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items: {body}"))
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect()
}

/// The names one filter finds (sorted by name, the default).
async fn found(caller: &Caller, field: &str, condition: &str, value: &str) -> Vec<String> {
    let (status, body) = search(caller, &filter(0, 0, field, condition, value)).await;
    assert_eq!(status, 200, "{field} {condition} {value}: {body}");
    assert_eq!(
        body["total_count"].as_u64().unwrap() as usize,
        names(&body).len(),
        "{body}"
    );
    names(&body).into_iter().map(str::to_owned).collect()
}

#[tokio::test]
async fn each_condition_type_filters_in_the_database() {
    let (app, caller) = fixture().await;
    let c = &caller;
    assert_eq!(found(c, "name", "eq", "alpha SHOP").await, ["Alpha Shop"]);
    assert_eq!(
        found(c, "status", "neq", "1").await,
        ["Beta Shop", "delta_market", "deltaXmarket", "Gamma Market"]
    );
    assert_eq!(
        found(c, "name", "like", "%SHOP").await,
        ["Alpha Shop", "Beta Shop"]
    );
    // `_` matches one character unless escaped; `%` likewise.
    assert_eq!(
        found(c, "name", "like", "delta_market").await,
        ["delta_market", "deltaXmarket"]
    );
    assert_eq!(
        found(c, "name", "like", "delta\\_market").await,
        ["delta_market"]
    );
    assert_eq!(found(c, "name", "like", "%100\\%").await, ["Epsilon 100%"]);
    assert_eq!(found(c, "email", "like", "%@market.example").await.len(), 3);
    assert_eq!(
        found(c, "name", "nlike", "%A%").await,
        ["Epsilon 100%", "Lister"]
    );
    assert_eq!(found(c, "name", "nlike", "%market%").await.len(), 4);
    assert_eq!(
        found(c, "status", "in", "0,2").await,
        ["Beta Shop", "delta_market", "deltaXmarket", "Gamma Market"]
    );
    assert_eq!(found(c, "status", "in", "reset").await, ["Beta Shop"]);
    assert_eq!(
        found(c, "name", "nin", "alpha shop, beta shop,Lister").await,
        [
            "delta_market",
            "deltaXmarket",
            "Epsilon 100%",
            "Gamma Market"
        ]
    );
    assert_eq!(
        found(c, "setup_type", "eq", "config").await,
        ["Gamma Market"]
    );
    // Times: Magento's form (UTC), RFC 3339, a date.
    assert_eq!(
        found(c, "created_at", "gt", "2023-11-14 22:18:20").await,
        ["Epsilon 100%"]
    );
    assert_eq!(
        found(c, "created_at", "lt", "2023-11-14T22:15:20Z").await,
        ["Alpha Shop", "Lister"]
    );
    assert_eq!(
        found(c, "created_at", "gteq", "2023-11-14T23:18:20+01:00").await,
        ["deltaXmarket", "Epsilon 100%"]
    );
    assert_eq!(
        found(c, "created_at", "lteq", "2020-09-14").await,
        ["Lister"]
    );
    assert_eq!(
        found(c, "updated_at", "gteq", "2023-11-14 23:19:20").await,
        ["Epsilon 100%"]
    );
    let lister = app
        .integrations
        .find_by_name("Lister")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        found(c, "id", "eq", &lister.id.to_string()).await,
        ["Lister"]
    );
    assert_eq!(
        found(c, "integration_id", "gt", &lister.id.to_string())
            .await
            .len(),
        FIXTURES.len()
    );
    assert_eq!(found(c, "email", "null", "").await, Vec::<String>::new());
    assert_eq!(
        found(c, "email", "notnull", "").await.len(),
        FIXTURES.len() + 1
    );
    app.db.destroy().await;
}

#[tokio::test]
async fn filters_of_a_group_are_ored_and_groups_anded_with_the_grants_of_each_item() {
    let (app, caller) = fixture().await;
    let mut either = filter(0, 0, "name", "eq", "Alpha Shop");
    either.extend(filter(0, 1, "name", "like", "gamma%"));
    either.extend(filter(0, 2, "status", "eq", "2"));
    let (status, body) = search(&caller, &either).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(names(&body), ["Alpha Shop", "Beta Shop", "Gamma Market"]);
    // Each item's grants (read for the whole page at once).
    let resources: Vec<&Value> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| &i["resources"])
        .collect();
    assert_eq!(
        resources,
        [
            &json!(["Magento_Backend::admin", "Magento_Sales::sales"]),
            &json!([
                "Magento_Backend::admin",
                "Magento_Catalog::catalog",
                "Magento_Catalog::catalog_inventory",
                "Magento_Catalog::products"
            ]),
            &json!([]),
        ]
    );
    let mut both = either.clone();
    both.extend(filter(1, 0, "email", "like", "%shop%"));
    both.extend(filter(2, 0, "status", "in", "1,0"));
    let (_, body) = search(&caller, &both).await;
    assert_eq!(names(&body), ["Alpha Shop"]);
    // The simple parameters are groups of their own, ANDed with the criteria.
    let mut pairs: Vec<(&str, &str)> = either
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    pairs.push(("[pageSize]", "2"));
    let path = format!("{}&status=2&status=0", query(&pairs));
    let (status, body) = send_json(caller.request("GET", &path)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(names(&body), ["Beta Shop", "Gamma Market"]);
    assert_eq!(
        body["search_criteria"]["filter_groups"][1],
        json!({"filters": [
            {"field": "status", "value": "2,0", "condition_type": "in"}
        ]})
    );
    app.db.destroy().await;
}

#[tokio::test]
async fn sort_orders_and_pages_at_the_edges() {
    let (app, caller) = fixture().await;
    let page = |size: &str, current: &str, sorts: &[(&str, &str)]| {
        let mut pairs = vec![
            ("[pageSize]".to_owned(), size.to_owned()),
            ("[currentPage]".to_owned(), current.to_owned()),
        ];
        for (i, (field, direction)) in sorts.iter().enumerate() {
            pairs.push((format!("[sortOrders][{i}][field]"), (*field).to_owned()));
            pairs.push((
                format!("[sortOrders][{i}][direction]"),
                (*direction).to_owned(),
            ));
        }
        pairs
    };
    let all = FIXTURES.len() + 1;
    let (_, body) = search(&caller, &page("3", "1", &[("created_at", "DESC")])).await;
    assert_eq!(
        names(&body),
        ["Epsilon 100%", "deltaXmarket", "delta_market"]
    );
    assert_eq!(body["total_count"], all);
    // Magento's echo: snake_case, with the page used.
    assert_eq!(
        body["search_criteria"],
        json!({"filter_groups": [], "sort_orders": [{"field": "created_at", "direction": "DESC"}],
               "page_size": 3, "current_page": 1})
    );
    // The last page holds the rest; one beyond it is empty, with the count still there.
    let (_, body) = search(&caller, &page("3", "3", &[("created_at", "desc")])).await;
    assert_eq!(names(&body), ["Lister"]);
    assert_eq!(body["total_count"], all);
    let (status, body) = search(&caller, &page("3", "4", &[("created_at", "DESC")])).await;
    assert_eq!(status, 200);
    assert_eq!(body["items"], json!([]));
    assert_eq!(body["total_count"], all);
    // Nothing found: an empty first page.
    let (_, body) = search(&caller, &filter(0, 0, "name", "eq", "nobody")).await;
    assert_eq!(
        (body["items"].clone(), body["total_count"].clone()),
        (json!([]), json!(0))
    );
    // Two sorts: status, then name descending; pages never overlap.
    let sorts = [("status", "ASC"), ("name", "DESC")];
    let (_, first) = search(&caller, &page("4", "1", &sorts)).await;
    let (_, second) = search(&caller, &page("4", "2", &sorts)).await;
    assert_eq!(
        names(&first),
        ["Gamma Market", "deltaXmarket", "delta_market", "Lister"]
    );
    assert_eq!(names(&second), ["Epsilon 100%", "Alpha Shop", "Beta Shop"]);
    // No sort: by name. No page size: the default (20 here; set lower below).
    let (_, body) = search(&caller, &[]).await;
    assert_eq!(names(&body)[0], "Alpha Shop");
    assert_eq!(body["search_criteria"]["page_size"], 20);
    app.db.destroy().await;

    // Configured sizes: the default bounds an answer, the maximum refuses more.
    let (app, caller) = fixture_with(|s| {
        s.webapi.default_page_size = 2.try_into().unwrap();
        s.webapi.maximum_page_size = 5.try_into().unwrap();
    })
    .await;
    let (_, body) = search(&caller, &[]).await;
    assert_eq!(names(&body).len(), 2);
    assert_eq!(body["total_count"], all);
    let (status, body) = search(&caller, &page("5", "2", &[])).await;
    assert_eq!((status, names(&body).len()), (200, 2));
    let (status, body) = search(&caller, &page("6", "1", &[])).await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"message": "Maximum SearchCriteria pageSize is %max", "parameters": {"max": "5"}})
    );
    app.db.destroy().await;
}

#[tokio::test]
async fn bad_criteria_get_400_in_magento_s_shape() {
    let (app, caller) = fixture().await;
    let refused = |pairs: Vec<(String, String)>| {
        let caller = &caller;
        async move {
            let (status, body) = search(caller, &pairs).await;
            assert_eq!(status, 400, "{body}");
            body
        }
    };
    let body = refused(filter(0, 0, "consumer_secret", "eq", "x")).await;
    assert_eq!(
        body,
        json!({
            "message": "The field \"%field\" can't be used to filter or sort. Use one of: %fields.",
            "parameters": {"field": "consumer_secret",
                           "fields": "id, integration_id, name, email, status, setup_type, created_at, updated_at"}
        })
    );
    let body = refused(filter(0, 0, "name", "finset", "x")).await;
    assert_eq!(body["parameters"]["conditionType"], "finset");
    let body = refused(filter(0, 0, "id", "like", "1%")).await;
    assert_eq!(
        body["message"],
        "The condition type \"%conditionType\" can't be used with the field \"%field\"."
    );
    let body = refused(filter(0, 0, "status", "eq", "enabled")).await;
    assert_eq!(
        body,
        json!({
            "message": "Invalid value of \"%value\" provided for the %fieldName field.",
            "parameters": {"value": "enabled", "fieldName": "searchCriteria[filter_groups][0][filters][0][value]"}
        })
    );
    let body = refused(filter(0, 0, "created_at", "gt", "last tuesday")).await;
    assert_eq!(body["parameters"]["value"], "last tuesday");
    let body = refused(vec![("[sortOrders][0][field]".into(), "endpoint".into())]).await;
    assert_eq!(body["parameters"]["field"], "endpoint");
    let body = refused(vec![("[sort_orders][0][direction]".into(), "DESC".into())]).await;
    assert_eq!(
        body,
        json!({
            "message": "\"%fieldName\" is required. Enter and try again.",
            "parameters": {"fieldName": "searchCriteria[sort_orders][0][field]"}
        })
    );
    let body = refused(vec![(
        "[filterGroup][0][filters][0][field]".into(),
        "name".into(),
    )])
    .await;
    assert_eq!(
        body["parameters"]["parameter"],
        "searchCriteria[filterGroup][0][filters][0][field]"
    );
    for (name, value) in [
        ("[pageSize]", "0"),
        ("[pageSize]", "ten"),
        ("[currentPage]", "0"),
        ("[currentPage]", "-1"),
    ] {
        let body = refused(vec![(name.into(), value.into())]).await;
        assert_eq!(body["parameters"]["value"], value, "{name}={value}: {body}");
    }
    let many: Vec<(String, String)> = filter(
        0,
        0,
        "id",
        "in",
        &(0..1001)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(","),
    );
    let body = refused(many).await;
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("The search criteria are too large"),
        "{body}"
    );
    app.db.destroy().await;
}

/// The plain list still answers every integration when they fit a page, and `spawn_app`'s
/// defaults apply.
#[tokio::test]
async fn the_list_without_criteria_is_the_first_page_by_name() {
    let app = spawn_app().await;
    let caller = app
        .minted_integration("Lister", &["Magento_Integration::integrations"])
        .await;
    let (status, body) = send_json(caller.request("GET", "/rest/V1/integrations")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(names(&body), ["Lister"]);
    assert_eq!(
        body["search_criteria"],
        json!({"filter_groups": [], "page_size": 20, "current_page": 1})
    );
    app.db.destroy().await;
}
