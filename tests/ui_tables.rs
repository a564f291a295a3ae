//! The record table (issue 20, point 7): sorting by a field, through the API
//! and the table's column headers, across pages with a cursor; prefix
//! search. Real server, real session, the pages' HTML.

mod common;

use common::{Env, PASSWORD, client, get_text, login};
use serde_json::{Value, json};

struct Table {
    c: reqwest::Client,
    server: common::Server,
    ws: String,
    cid: String,
    /// Field ids by name.
    fields: Vec<(String, String)>,
}

impl Table {
    fn api(&self, p: &str) -> String {
        self.server.url(&format!(
            "/api/v1/workspaces/{}/collections/{}{p}",
            self.ws, self.cid
        ))
    }

    fn field(&self, name: &str) -> String {
        self.fields.iter().find(|f| f.0 == name).unwrap().1.clone()
    }

    async fn get(&self, query: &str) -> (u16, Value) {
        let r = self
            .c
            .get(self.api(&format!("/records?{query}")))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    /// Every page of `sort` at `limit` a page, following the cursor: the
    /// `field` of each record, in order, and the number of pages.
    async fn walk(&self, sort: &str, limit: usize, field: &str) -> (Vec<Value>, usize) {
        let (mut out, mut pages, mut cursor) = (Vec::new(), 0, None::<String>);
        loop {
            let mut q = format!("sort={sort}&limit={limit}");
            if let Some(c) = &cursor {
                q.push_str(&format!("&cursor={c}"));
            }
            let (s, page) = self.get(&q).await;
            assert_eq!(s, 200, "{page}");
            pages += 1;
            let items = page["items"].as_array().unwrap();
            assert!(items.len() <= limit);
            out.extend(items.iter().map(|r| r["values"][field].clone()));
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return (out, pages),
            }
        }
    }
}

/// Names and ages in no order; one record has neither.
const PEOPLE: [(&str, i64); 9] = [
    ("Noether", 53),
    ("ada", 36),
    ("Turing", 41),
    ("Curie", 66),
    ("babbage", 79),
    ("Hopper", 85),
    ("Euler", 76),
    ("Lovelace", 9),
    ("Gauss", 77),
];

async fn table(email: &str, extra: usize) -> Table {
    let env = Env::new();
    env.create_user(email, "Table Owner");
    let ws = env.create_workspace("Tables Ltd", email);
    let server = env.start();
    let c = client(&server);
    assert_eq!(login(&c, &server, email, PASSWORD).await.status(), 200);
    let coll: Value = c
        .post(server.url(&format!("/api/v1/workspaces/{ws}/collections")))
        .json(&json!({"name": "People", "fields": [
            {"name": "Name", "type": "text", "searchable": true},
            {"name": "Age", "type": "integer"},
            {"name": "Bio", "type": "long_text"}
        ]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let fields = coll["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap().to_owned(),
                f["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let t = Table {
        c,
        server,
        ws,
        cid: coll["id"].as_str().unwrap().to_owned(),
        fields,
    };
    let mut values: Vec<Value> = PEOPLE
        .iter()
        .map(|(n, a)| json!({"Name": n, "Age": a}))
        .collect();
    values.insert(4, json!({"Bio": "nameless"}));
    // More records, numbered out of order, for the table's own page size.
    values.extend((0..extra).map(|i| json!({"Name": format!("Extra {}", (i * 7) % extra), "Age": 1000 + ((i * 11) % extra) as i64})));
    for v in values {
        let r =
            t.c.post(t.api("/records"))
                .json(&json!({ "values": v }))
                .send()
                .await
                .unwrap();
        assert_eq!(r.status(), 201);
    }
    t
}

#[tokio::test]
async fn the_api_sorts_by_a_text_or_number_field_across_pages_and_refuses_a_bad_sort() {
    let t = table("sort-api@example.com", 0).await;
    let (name, age, bio) = (t.field("Name"), t.field("Age"), t.field("Bio"));
    let mut names: Vec<&str> = PEOPLE.iter().map(|p| p.0).collect();
    names.sort_by_key(|n| n.to_lowercase());
    let (got, pages) = t.walk(&name, 4, "Name").await;
    let mut want: Vec<Value> = names.iter().map(|n| json!(n)).collect();
    // The record without a name comes last, both ways.
    want.push(Value::Null);
    assert_eq!(got, want, "A to Z, case-insensitive");
    assert_eq!(pages, 3);
    let (got, _) = t.walk(&format!("-{name}"), 4, "Name").await;
    let mut desc: Vec<Value> = names.iter().rev().map(|n| json!(n)).collect();
    desc.push(Value::Null);
    assert_eq!(got, desc, "Z to A");
    let mut ages: Vec<i64> = PEOPLE.iter().map(|p| p.1).collect();
    ages.sort();
    let (got, pages) = t.walk(&age, 2, "Age").await;
    let mut want: Vec<Value> = ages.iter().map(|a| json!(a)).collect();
    want.push(Value::Null);
    assert_eq!(got, want, "by number, not as text (9 before 36)");
    assert_eq!(pages, 5);
    // The time orders are as they were.
    let (got, _) = t.walk("created_at", 3, "Name").await;
    assert_eq!(got[0], json!("Noether"));
    let (got, _) = t.walk("-created_at", 3, "Name").await;
    assert_eq!(got[0], json!("Gauss"));

    // An unknown or unsortable field, a field sort with a search, and a
    // cursor of another order: 422 naming the parameter.
    for (q, field) in [
        ("sort=f_000000000000".to_owned(), "sort"),
        ("sort=Name".to_owned(), "sort"),
        (format!("sort={bio}"), "sort"),
        (format!("sort=-{bio}"), "sort"),
        (format!("sort={name}&q=ada"), "sort"),
        ("sort=".to_owned(), "sort"),
    ] {
        let (s, body) = t.get(&q).await;
        assert_eq!(s, 422, "{q}: {body}");
        assert_eq!(body["errors"][0]["field"], field, "{q}: {body}");
    }
    let (_, first) = t.get(&format!("sort={name}&limit=2")).await;
    let c = first["next_cursor"].as_str().unwrap();
    for q in [
        format!("sort=-{name}&limit=2&cursor={c}"),
        format!("sort={age}&limit=2&cursor={c}"),
        format!("sort=created_at&limit=2&cursor={c}"),
        format!("sort={name}&limit=2&cursor=x{c}"),
    ] {
        let (s, body) = t.get(&q).await;
        assert_eq!(s, 422, "{q}: {body}");
        assert_eq!(body["errors"][0]["field"], "cursor", "{q}: {body}");
    }
    // The cursor is sealed: no value in the clear.
    assert!(!c.contains("ada") && !c.contains("YWRh"), "{c}");
    t.server.stop();
}

#[tokio::test]
async fn search_words_match_as_prefixes_from_two_letters() {
    let t = table("prefix@example.com", 0).await;
    let names = |body: &Value| -> Vec<String> {
        let mut v: Vec<String> = body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["values"]["Name"].as_str().unwrap_or_default().to_owned())
            .collect();
        v.sort();
        v
    };
    for (q, want) in [
        ("Noeth", vec!["Noether"]),
        ("noether", vec!["Noether"]),
        ("LOVE", vec!["Lovelace"]),
        ("ba", vec!["babbage"]),
        // One letter matches whole words only.
        ("N", vec![]),
        ("Noeth x", vec![]),
        ("oether", vec![]),
    ] {
        let (s, body) = t.get(&format!("q={q}")).await;
        assert_eq!(s, 200, "{body}");
        assert_eq!(names(&body), want, "q={q}");
    }
    let page = get_text(
        &t.c,
        t.server.url(&format!("/w/{}/c/{}?q=Noeth", t.ws, t.cid)),
    )
    .await;
    assert!(page.contains(">Noether<"), "{page}");
    assert!(!page.contains(">Curie<"), "{page}");
    // With a search, no field offers a sort the search cannot do.
    let name = t.field("Name");
    assert!(!page.contains(&format!("sort={name}")), "{page}");
    t.server.stop();
}

/// Position of each needle in the page; panics on one missing.
fn positions(page: &str, needles: &[String]) -> Vec<usize> {
    needles
        .iter()
        .map(|n| {
            page.find(n.as_str())
                .unwrap_or_else(|| panic!("{n} missing"))
        })
        .collect()
}

#[tokio::test]
async fn the_table_headers_sort_by_a_field_and_the_next_page_keeps_the_order() {
    // 40 records: the table's smallest page (25) leaves a second page.
    let t = table("sort-ui@example.com", 30).await;
    let (name, age, bio) = (t.field("Name"), t.field("Age"), t.field("Bio"));
    let base = format!("/w/{}/c/{}", t.ws, t.cid);
    let page = get_text(&t.c, t.server.url(&base)).await;
    // Sortable fields are links (A to Z first), the long text is not.
    assert!(
        page.contains(&format!("href=\"{base}?sort={name}\"")),
        "{page}"
    );
    assert!(
        page.contains(&format!("href=\"{base}?sort={age}\"")),
        "{page}"
    );
    assert!(!page.contains(&format!("sort={bio}")), "{page}");
    assert!(
        page.contains("<th aria-sort=\"descending\"><a href=\"")
            && page.contains("Created<span aria-hidden=\"true\"> ▼")
    );

    let page = get_text(&t.c, t.server.url(&format!("{base}?sort={age}"))).await;
    assert!(
        page.contains(&format!(
            "<th aria-sort=\"ascending\"><a href=\"{base}?sort=-{age}\">Age<span aria-hidden=\"true\"> ▲</span>"
        )),
        "{page}"
    );
    assert_eq!(page.matches("aria-sort=").count(), 1, "one sorted column");
    // Youngest first: Lovelace (9), ada (36), Turing (41), ...
    let p = positions(
        &page,
        &[
            ">Lovelace<".into(),
            ">ada<".into(),
            ">Turing<".into(),
            ">Gauss<".into(),
        ],
    );
    assert!(p.windows(2).all(|w| w[0] < w[1]), "{p:?}");
    // Ages 9..85 then 1000..: the first page ends at 1015; the next page
    // link and the page-size form keep the order.
    assert!(
        page.contains(">1015<") && !page.contains(">1016<"),
        "{page}"
    );
    assert!(
        page.contains(&format!("name=\"sort\" value=\"{age}\"")),
        "{page}"
    );
    let next = page
        .split("id=\"next-page\" href=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .replace("&amp;", "&");
    assert!(next.contains(&format!("sort={age}")), "{next}");
    let second = get_text(&t.c, t.server.url(&next)).await;
    let p = positions(
        &second,
        &[">1016<".into(), ">1020<".into(), ">1029<".into()],
    );
    assert!(p.windows(2).all(|w| w[0] < w[1]), "{p:?}");
    assert!(!second.contains(">1015<") && !second.contains(">Gauss<"));
    assert!(second.contains("aria-sort=\"ascending\""), "{second}");

    // Descending by name: Z first, the nameless record last.
    let page = get_text(&t.c, t.server.url(&format!("{base}?sort=-{name}&limit=50"))).await;
    assert!(page.contains("aria-sort=\"descending\""), "{page}");
    let p = positions(
        &page,
        &[
            ">Turing<".into(),
            ">Noether<".into(),
            ">Extra 9<".into(),
            ">Extra 0<".into(),
            ">ada<".into(),
            ">(open)<".into(),
        ],
    );
    assert!(p.windows(2).all(|w| w[0] < w[1]), "{p:?}");
    // A bad sort from a hand-made URL is refused, naming it.
    let r =
        t.c.get(t.server.url(&format!("{base}?sort={bio}")))
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 422);
    t.server.stop();
}

/// A field sort decrypts the collection once a request: up to 5,000 records
/// (`records::sort::SORT_CAP`); one more is a 422 naming `sort`, and the
/// time orders still page it.
#[tokio::test]
async fn a_field_sort_stops_at_its_cap_with_a_422_naming_sort() {
    let t = table("sort-cap@example.com", 0).await;
    let age = t.field("Age");
    // 10 records already; 4,990 more make 5,000.
    let mut csv = String::from("Name,Age\n");
    for i in 0..4_990 {
        csv.push_str(&format!("Bulk {i},{}\n", 100 + (i * 37) % 4_990));
    }
    let r =
        t.c.post(t.api("/import"))
            .header("content-type", "text/csv")
            .body(csv)
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    let started = std::time::Instant::now();
    let (s, page) = t.get(&format!("sort=-{age}&limit=2")).await;
    println!("a field sort over 5,000 records: {:?}", started.elapsed());
    assert_eq!(s, 200, "{page}");
    let ages: Vec<&Value> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["values"]["Age"])
        .collect();
    assert_eq!(ages, [&json!(5089), &json!(5088)], "{page}");
    // The table offers the field's order while it works...
    let table_url = t.server.url(&format!("/w/{}/c/{}", t.ws, t.cid));
    let html = common::get_text(&t.c, table_url.clone()).await;
    assert!(html.contains(&format!("sort={age}")), "a sort link for Age");
    let r =
        t.c.post(t.api("/records"))
            .json(&json!({"values": {"Name": "One more"}}))
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 201);
    let (s, body) = t.get(&format!("sort=-{age}&limit=2")).await;
    assert_eq!(s, 422, "{body}");
    assert_eq!(body["errors"][0]["field"], "sort", "{body}");
    // ... and not past the cap, where it would be a 422.
    let html = common::get_text(&t.c, table_url).await;
    assert!(
        !html.contains(&format!("sort={age}")),
        "no sort link past the cap"
    );
    assert!(
        !html.contains(&format!("sort=-{age}")),
        "no sort link past the cap"
    );
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("5000"),
        "{body}"
    );
    let (s, page) = t.get("sort=-created_at&limit=2").await;
    assert_eq!(s, 200, "{page}");
    assert_eq!(page["items"][0]["values"]["Name"], "One more");
    t.server.stop();
}
