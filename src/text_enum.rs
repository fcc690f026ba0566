//! `text_enum!`: an enum stored as a `text` column (with a CHECK listing
//! its values in the migrations), read with `#[sqlx(try_from = "String")]`
//! and written with `as_str()`, so states are enums in the code and plain
//! words in the database and the API.

/// Declares `enum $name { $variant => "text", ... }` with `ALL`, `as_str()`
/// and `TryFrom<String>`; attributes (derives, docs, serde) pass through.
#[macro_export]
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$( $name::$variant, )+];

            /// The stored name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;

            fn try_from(text: String) -> Result<Self, Self::Error> {
                match text.as_str() {
                    $( $text => Ok($name::$variant), )+
                    other => Err(format!(concat!("unknown ", stringify!($name), " {}"), other)),
                }
            }
        }
    };
}
