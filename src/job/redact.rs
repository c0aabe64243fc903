//! Cuts every URL in a text down to `scheme://host[:port]` before the text is written where others read it
//! (result documents, `status.retraining.lastError`, conditions, Kubernetes Events, Job logs): a webhook
//! URL, a presigned object URL or a Qdrant URL may carry a token in its user info, path or query. Pure.

/// Characters that end a URL in running text.
fn ends_url(c: char) -> bool {
    c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`' | '\\')
}

/// Punctuation that usually closes the sentence or bracket around a URL rather than belonging to it.
fn trailing_punctuation(c: char) -> bool {
    matches!(c, ')' | ']' | '}' | '.' | ',' | ';' | ':' | '!' | '?')
}

/// `scheme://host[:port]` of a URL without its scheme (`rest` starts after `://`): the user info, path,
/// query and fragment are dropped.
fn origin(scheme: &str, rest: &str) -> String {
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    format!("{scheme}://{host_port}")
}

/// Start of the scheme that ends right before byte `sep` (the `://`), if it is a valid scheme.
fn scheme_start(text: &str, sep: usize) -> Option<usize> {
    let before = &text[..sep];
    let start = before
        .char_indices()
        .rev()
        .take_while(|(_, c)| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        .last()
        .map(|(i, _)| i)?;
    // A scheme starts with a letter.
    let first = before[start..]
        .char_indices()
        .find(|(_, c)| c.is_ascii_alphabetic())?;
    Some(start + first.0)
}

/// `text` with every `scheme://…` URL replaced by `scheme://host[:port]`.
pub fn redact_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut done = 0;
    let mut search = 0;
    while let Some(found) = text[search..].find("://") {
        let sep = search + found;
        let Some(start) = scheme_start(text, sep).filter(|s| *s >= done) else {
            search = sep + 3;
            continue;
        };
        let body_start = sep + 3;
        let mut end = text[body_start..]
            .char_indices()
            .find(|(_, c)| ends_url(*c))
            .map_or(text.len(), |(i, _)| body_start + i);
        while end > body_start {
            match text[..end].chars().next_back() {
                Some(c) if trailing_punctuation(c) => end -= c.len_utf8(),
                _ => break,
            }
        }
        out.push_str(&text[done..start]);
        out.push_str(&origin(&text[start..sep], &text[body_start..end]));
        done = end;
        search = end.max(body_start);
    }
    out.push_str(&text[done..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_webhook_url_with_a_token_in_the_query_keeps_only_its_origin() {
        assert_eq!(
            redact_urls(
                "connection failed: error sending request for url (http://hooks.example:8080/hooks/driftwatch?token=SECRET-IN-URL)"
            ),
            "connection failed: error sending request for url (http://hooks.example:8080)"
        );
    }

    #[test]
    fn user_info_paths_and_fragments_are_dropped_from_every_url() {
        assert_eq!(
            redact_urls("https://user:pa55@example.com/a/b#frag and s3://bucket/key/x.jpg."),
            "https://example.com and s3://bucket."
        );
        assert_eq!(
            redact_urls("\"http://[::1]:9/p?q=1\", ftp://h/x"),
            "\"http://[::1]:9\", ftp://h"
        );
        assert_eq!(
            redact_urls("https://h/p?token=a)b c"),
            "https://h c",
            "a bracket inside the URL does not end it"
        );
    }

    #[test]
    fn text_without_urls_is_unchanged() {
        for text in [
            "",
            "no url here",
            "a :// b",
            "ratio 3://4",
            "HTTP 400: bad request",
            "ünïcödé://",
        ] {
            assert_eq!(redact_urls(text), text);
        }
    }
}
