//! `list!`: the API's plain lists, objects whose one property `items` holds
//! the things listed, declared one line each:
//!
//! ```text
//! list!(PasskeyList of PasskeyInfo);
//! ```
//!
//! It writes the `#[derive(Object)]` struct of that name (the schema's name in
//! the OpenAPI document), built from an iterator of the items
//! (`.map(..).collect()`) or from a `Vec` of anything they convert from
//! (`rows.into()`). Lists that say more than their items (a page's cursor, a
//! documented order) stay written out.

macro_rules! list {
    ($name:ident of $item:ty) => {
        #[derive(poem_openapi::Object)]
        pub struct $name {
            pub items: Vec<$item>,
        }

        impl FromIterator<$item> for $name {
            fn from_iter<I: IntoIterator<Item = $item>>(items: I) -> Self {
                Self {
                    items: items.into_iter().collect(),
                }
            }
        }

        impl<R> From<Vec<R>> for $name
        where
            $item: From<R>,
        {
            fn from(rows: Vec<R>) -> Self {
                rows.into_iter().map(<$item>::from).collect()
            }
        }
    };
}

pub(crate) use list;
