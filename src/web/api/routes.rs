//! `api!`: an API file's routes as one declaration each, its method and path
//! on the line above the handler:
//!
//! ```text
//! api! {
//!     #[OpenApi(tag = "ApiTags::Access")]
//!     impl AccessApi {
//!         /// Removes a member.
//!         DELETE "/workspaces/:workspace/members/:user"
//!         async fn remove(workspace: tenant::Path<op::MemberDelete>, user: Path<String>) -> Done {
//!             ..
//!         }
//!     }
//! }
//! ```
//!
//! It writes the `#[OpenApi]` impl poem-openapi reads, each route with its
//! `#[oai(path, method)]` (and `tag` when the route names one: `GET "/me/x"
//! tag = "ApiTags::Me"`), `&self`, and its reply in a `poem::Result`: the
//! handler above answers `poem::Result<Done>`. Doc comments and other
//! attributes above the method line stay on the handler. The arguments go
//! through as written, token by token: poem-openapi tells a path parameter by
//! the word `Path` in its type, which a `$t:ty` fragment would hide from it
//! (the isolation matrix fails if a route's parameters were mixed up).
//!
//! `cargo fmt` leaves a macro's body alone: `scripts/fmt-api` formats the
//! handlers (and `scripts/test` checks they are).

macro_rules! api {
    ($(#[$($attr:tt)*])* impl $api:ident { $($routes:tt)* }) => {
        api!(@route [$(#[$($attr)*])* impl $api] [] $($routes)*);
    };
    (@route [$($head:tt)*] [$($done:tt)*]) => {
        $($head)* { $($done)* }
    };
    (@route $head:tt $done:tt $(#[$($a:tt)*])* GET $($rest:tt)*) => {
        api!(@fn $head $done [$(#[$($a)*])*] "get" $($rest)*);
    };
    (@route $head:tt $done:tt $(#[$($a:tt)*])* POST $($rest:tt)*) => {
        api!(@fn $head $done [$(#[$($a)*])*] "post" $($rest)*);
    };
    (@route $head:tt $done:tt $(#[$($a:tt)*])* PUT $($rest:tt)*) => {
        api!(@fn $head $done [$(#[$($a)*])*] "put" $($rest)*);
    };
    (@route $head:tt $done:tt $(#[$($a:tt)*])* PATCH $($rest:tt)*) => {
        api!(@fn $head $done [$(#[$($a)*])*] "patch" $($rest)*);
    };
    (@route $head:tt $done:tt $(#[$($a:tt)*])* DELETE $($rest:tt)*) => {
        api!(@fn $head $done [$(#[$($a)*])*] "delete" $($rest)*);
    };
    (@fn $head:tt [$($done:tt)*] [$($attrs:tt)*] $method:tt $path:tt $(tag = $tag:tt)?
        async fn $name:ident($($arg:tt)*) -> $reply:ty { $($body:tt)* }
        $($rest:tt)*
    ) => {
        api!(@route $head [
            $($done)*
            $($attrs)*
            #[oai(path = $path, method = $method $(, tag = $tag)?)]
            async fn $name(&self, $($arg)*) -> poem::Result<$reply> { $($body)* }
        ] $($rest)*);
    };
}

pub(crate) use api;
