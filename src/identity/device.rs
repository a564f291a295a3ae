//! A short, human label for where a sign-in came from ("Firefox on Linux",
//! "Safari on iPhone", "curl"), from its User-Agent header, for the list of
//! sign-ins a person reviews and ends. A label helps a person recognise
//! their own devices; it proves nothing (any client can send any header),
//! so nothing decides on it.

/// Browsers, most specific first: Edge and Opera also say "Chrome", Chrome
/// also says "Safari".
const BROWSERS: &[(&str, &str)] = &[
    ("Edg/", "Edge"),
    ("EdgA/", "Edge"),
    ("OPR/", "Opera"),
    ("Firefox/", "Firefox"),
    ("FxiOS/", "Firefox"),
    ("Chromium/", "Chromium"),
    ("HeadlessChrome/", "Headless Chrome"),
    ("CriOS/", "Chrome"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
];

/// Systems, most specific first: Android also says "Linux", iOS "Mac OS X".
const SYSTEMS: &[(&str, &str)] = &[
    ("Android", "Android"),
    ("iPhone", "iPhone"),
    ("iPad", "iPad"),
    ("CrOS", "ChromeOS"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("Macintosh", "macOS"),
    ("Linux", "Linux"),
    ("FreeBSD", "FreeBSD"),
];

/// Command-line and library clients, by the product token they start with.
const TOOLS: &[(&str, &str)] = &[
    ("curl/", "curl"),
    ("Wget/", "Wget"),
    ("python-requests/", "Python requests"),
    ("python-httpx/", "Python httpx"),
    ("Python-urllib/", "Python urllib"),
    ("Go-http-client/", "Go"),
    ("okhttp/", "OkHttp"),
    ("node-fetch", "Node.js"),
    ("undici", "Node.js"),
    ("aura-cli/", "Aura CLI"),
    ("PostmanRuntime/", "Postman"),
    ("reqwest", "Rust reqwest"),
];

/// The label, or `None` without a User-Agent. It is always one of the
/// names above ("Other client" for the rest): a header is whatever the
/// client typed, and nothing a client typed is stored in plaintext.
pub fn label(user_agent: Option<&str>) -> Option<String> {
    let ua = user_agent?.trim();
    if ua.is_empty() {
        return None;
    }
    if let Some((_, name)) = TOOLS.iter().find(|(p, _)| ua.starts_with(p)) {
        return Some((*name).to_owned());
    }
    let browser = BROWSERS.iter().find(|(p, _)| ua.contains(p)).map(|b| b.1);
    let system = SYSTEMS.iter().find(|(p, _)| ua.contains(p)).map(|s| s.1);
    Some(match (browser, system) {
        (Some(b), Some(s)) => format!("{b} on {s}"),
        (Some(b), None) => b.to_owned(),
        (None, Some(s)) => format!("A browser on {s}"),
        (None, None) => "Other client".to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::label;

    #[test]
    fn common_clients_get_their_names() {
        let cases = [
            (
                "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
                "Firefox on Linux",
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
                "Edge on Windows",
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
                "Safari on iPhone",
            ),
            (
                "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
                "Chrome on Android",
            ),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
                "Safari on macOS",
            ),
            ("curl/8.5.0", "curl"),
            ("aura-cli/0.1.0", "Aura CLI"),
            ("MyTool/2.0 (+https://example.com)", "Other client"),
            ("canary-1234 Linux", "A browser on Linux"),
        ];
        for (ua, want) in cases {
            assert_eq!(label(Some(ua)).as_deref(), Some(want), "{ua}");
        }
        assert_eq!(label(None), None);
        assert_eq!(label(Some("  ")), None);
    }
}
