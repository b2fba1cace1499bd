//! Enums chosen by name (a `--flag` value, a plan word), shown by that name and parsed from it:
//! [`by_name`] finds a value by its name, and
//! [`display_and_from_str!`](crate::display_and_from_str) implements `Display` and `FromStr`
//! through the type's name function and a parser.

/// The value of `all` that `name` calls `s`, if one is.
pub fn by_name<T: Copy>(all: &[T], name: fn(T) -> &'static str, s: &str) -> Option<T> {
    all.iter().copied().find(|&v| name(v) == s)
}

/// Implements `Display` and `FromStr` for `$t`, an enum chosen by name: `Display` writes the
/// name `$name` gives a value, and `FromStr` calls `$parse` (a `Fn(&str) -> Result<$t, String>`:
/// the error is a message).
#[macro_export]
macro_rules! display_and_from_str {
    ($t:ty, $name:path, $parse:expr) => {
        impl ::std::fmt::Display for $t {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str($name(*self))
            }
        }

        impl ::std::str::FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> Result<$t, String> {
                ($parse)(s)
            }
        }
    };
}
