//! Entries of an RSS 2.0 or Atom feed, read with a streaming XML reader:
//! namespaced elements (`dc:date`, `content:encoded`) are matched by their
//! local name, CDATA and entity references are text, and an entry keeps
//! whatever fields it has: an id (`guid`, Atom `id`, else the link), a
//! time (published, else updated, else `dc:date`), title, link, summary.

use quick_xml::{Reader, XmlVersion};
use quick_xml::events::Event;

/// One entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Entry {
    /// `guid`, Atom `id`, or the link when there is neither.
    pub id: String,
    /// Title.
    pub title: Option<String>,
    /// Link (RSS `link`, Atom `link rel="alternate"` or the first link).
    pub link: Option<String>,
    /// Summary or description.
    pub summary: Option<String>,
    /// Author.
    pub author: Option<String>,
    /// When it was published (Unix ms).
    pub published_ms: Option<u64>,
    /// When it was last updated (Unix ms).
    pub updated_ms: Option<u64>,
}

/// Entries read at most; a longer feed is cut.
const MAX_ENTRIES: usize = 1000;

/// The entries of a feed, in document order.
pub fn entries(xml: &str) -> Result<Vec<Entry>, String> {
    let mut reader = Reader::from_str(xml);
    // Not trimmed per chunk: entity references split text, and the spaces
    // around them belong to it. Whole values are trimmed instead.
    reader.config_mut().trim_text(false);
    let mut entries = Vec::new();
    let mut current: Option<Entry> = None;
    let mut guid = None;
    // The local name of the element whose text is being read, and its text.
    let mut field: Option<String> = None;
    let mut text = String::new();
    loop {
        let event = reader.read_event().map_err(|e| format!("not a readable feed: {e}"))?;
        match event {
            Event::Start(element) | Event::Empty(element) if is_entry(element.local_name().as_ref()) => {
                current = Some(Entry::default());
                guid = None;
            }
            Event::Start(element) if current.is_some() => {
                let name = element.local_name().as_ref().to_owned();
                if name == "link" {
                    link_attribute(&element, current.as_mut());
                }
                field = Some(name);
                text.clear();
            }
            Event::Empty(element) if current.is_some() && element.local_name().as_ref() == "link" => {
                link_attribute(&element, current.as_mut());
            }
            Event::Text(t) if field.is_some() => text.push_str(&t.xml_content(XmlVersion::Implicit1_0)),
            Event::CData(c) if field.is_some() => text.push_str(&c.into_inner()),
            Event::GeneralRef(r) if field.is_some() => {
                if let Ok(Some(ch)) = r.resolve_char_ref() {
                    text.push(ch);
                } else if let Some(resolved) = quick_xml::escape::resolve_predefined_entity(&r.into_inner()) {
                    text.push_str(resolved);
                }
            }
            Event::End(element) if is_entry(element.local_name().as_ref()) => {
                if let Some(mut entry) = current.take() {
                    entry.id = guid.take().or_else(|| entry.link.clone()).unwrap_or_default();
                    if !entry.id.is_empty() {
                        entries.push(entry);
                    }
                    if entries.len() == MAX_ENTRIES {
                        break;
                    }
                }
            }
            Event::End(element) => {
                if let (Some(entry), Some(name)) = (current.as_mut(), field.take())
                    && name == element.local_name().as_ref()
                {
                    set(entry, &mut guid, &name, text.trim().to_owned());
                }
                text.clear();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(entries)
}

fn is_entry(local_name: &str) -> bool {
    local_name == "item" || local_name == "entry"
}

/// Atom links carry their target in `href`; the alternate one is the entry's.
fn link_attribute(element: &quick_xml::events::BytesStart<'_>, entry: Option<&mut Entry>) {
    let Some(entry) = entry else { return };
    let attribute = |key: &str| {
        element.attributes().flatten().find(|a| a.key.local_name().as_ref() == key).map(|a| a.value.into_owned())
    };
    let Some(href) = attribute("href") else { return };
    let alternate = attribute("rel").is_none_or(|rel| rel == "alternate");
    if alternate || entry.link.is_none() {
        entry.link = Some(href);
    }
}

fn set(entry: &mut Entry, guid: &mut Option<String>, name: &str, value: String) {
    if value.is_empty() {
        return;
    }
    match name {
        "guid" | "id" => *guid = Some(value),
        "title" => entry.title = Some(value),
        "link" if entry.link.is_none() => entry.link = Some(value),
        "description" | "summary" if entry.summary.is_none() => entry.summary = Some(value),
        "encoded" | "content" if entry.summary.is_none() => entry.summary = Some(value),
        "author" | "creator" | "name" if entry.author.is_none() => entry.author = Some(value),
        "pubDate" | "published" | "issued" => entry.published_ms = crate::date::parse(&value),
        "updated" | "modified" => entry.updated_ms = crate::date::parse(&value),
        "date" if entry.published_ms.is_none() => entry.published_ms = crate::date::parse(&value),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RSS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:content="http://purl.org/rss/1.0/modules/content/">
  <channel>
    <title>Example &amp; Co</title>
    <link>https://example.com/</link>
    <item>
      <title><![CDATA[Rust & <WebAssembly>]]></title>
      <link>https://example.com/posts/1</link>
      <guid isPermaLink="false">post-1</guid>
      <pubDate>Sat, 13 Dec 2003 18:30:02 GMT</pubDate>
      <dc:creator>Ada</dc:creator>
      <description>First &lt;b&gt;post&lt;/b&gt; &#8212; hello</description>
    </item>
    <item>
      <title>No guid, no date</title>
      <link>https://example.com/posts/2</link>
    </item>
    <item>
      <title>Dublin Core date</title>
      <guid>https://example.com/posts/3</guid>
      <dc:date>2003-12-14T08:00:00Z</dc:date>
      <content:encoded><![CDATA[<p>Full text</p>]]></content:encoded>
    </item>
  </channel>
</rss>"#;

    const ATOM: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>Example Feed</title>
  <link href="http://example.org/"/>
  <updated>2003-12-13T18:30:02Z</updated>
  <entry>
    <title type="html">Atom-Powered &lt;Robots&gt;</title>
    <link rel="self" href="http://example.org/feed/1"/>
    <link rel="alternate" href="http://example.org/2003/12/13/atom03"/>
    <id>urn:uuid:1225c695-cfb8-4ebb-aaaa-80da344efa6a</id>
    <published>2003-12-13T08:29:29-04:00</published>
    <updated>2003-12-13T18:30:02Z</updated>
    <author><name>John Doe</name></author>
    <summary>Some text.</summary>
  </entry>
</feed>"#;

    #[test]
    fn rss_with_namespaces_cdata_entities_and_missing_fields() -> Result<(), String> {
        let entries = entries(RSS)?;
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[0].id, "post-1");
        assert_eq!(entries[0].title.as_deref(), Some("Rust & <WebAssembly>"));
        assert_eq!(entries[0].summary.as_deref(), Some("First <b>post</b> \u{2014} hello"));
        assert_eq!(entries[0].author.as_deref(), Some("Ada"));
        assert_eq!(entries[0].published_ms, Some(1_071_340_202_000));
        assert_eq!((entries[1].id.as_str(), entries[1].published_ms), ("https://example.com/posts/2", None));
        assert_eq!(entries[2].published_ms, Some(1_071_388_800_000));
        assert_eq!(entries[2].summary.as_deref(), Some("<p>Full text</p>"));
        Ok(())
    }

    #[test]
    fn atom_entries_with_alternate_links() -> Result<(), String> {
        let entries = entries(ATOM)?;
        assert_eq!(entries.len(), 1);
        let entry = &entries[0];
        assert_eq!(entry.id, "urn:uuid:1225c695-cfb8-4ebb-aaaa-80da344efa6a");
        assert_eq!(entry.title.as_deref(), Some("Atom-Powered <Robots>"));
        assert_eq!(entry.link.as_deref(), Some("http://example.org/2003/12/13/atom03"));
        assert_eq!(entry.author.as_deref(), Some("John Doe"));
        assert_eq!(entry.published_ms, Some(1_071_318_569_000));
        assert_eq!(entry.updated_ms, Some(1_071_340_202_000));
        Ok(())
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(entries("<rss><channel><item><title>unclosed</rss>").is_err());
        assert!(entries("<html>not a feed").is_ok_and(|e| e.is_empty()));
        assert!(entries("").is_ok_and(|e| e.is_empty()));
    }
}
