//! The template environment: minijinja with HTML auto-escaping, the page templates compiled
//! into the binary, and number filters that render missing values as "—".

use minijinja::value::Value;
use minijinja::{AutoEscape, Environment};

use crate::error::{ReportError, Result};

const TEMPLATES: [(&str, &str); 5] = [
    ("base.html", include_str!("../templates/base.html")),
    ("macros.html", include_str!("../templates/macros.html")),
    ("run.html", include_str!("../templates/run.html")),
    ("dataset.html", include_str!("../templates/dataset.html")),
    ("compare.html", include_str!("../templates/compare.html")),
];

fn as_f64(v: &Value) -> Option<f64> {
    if v.is_undefined() || v.is_none() {
        return None;
    }
    f64::try_from(v.clone()).ok().filter(|x| x.is_finite())
}

/// `{{ x|num }}`, `{{ x|num(2) }}`: fixed digits, "—" when missing.
fn num(v: Value, digits: Option<usize>) -> String {
    match as_f64(&v) {
        Some(x) => format!("{:.*}", digits.unwrap_or(3), x),
        None => "—".into(),
    }
}

/// `{{ x|pct }}`: a share as a percentage, "—" when missing.
fn pct(v: Value, digits: Option<usize>) -> String {
    match as_f64(&v) {
        Some(x) => format!("{:.*}%", digits.unwrap_or(1), x * 100.0),
        None => "—".into(),
    }
}

fn env() -> Environment<'static> {
    let mut env = Environment::new();
    // Every page is HTML: escape every interpolated value unless a template says `|safe`
    // (only for SVG that plotters escaped and data URIs this crate made).
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    env.set_undefined_behavior(minijinja::UndefinedBehavior::SemiStrict);
    for (name, src) in TEMPLATES {
        env.add_template(name, src)
            .expect("bundled templates parse");
    }
    env.add_filter("num", num);
    env.add_filter("pct", pct);
    env
}

/// Render page `template` with `ctx`.
pub fn render(template: &str, ctx: Value) -> Result<String> {
    let env = env();
    let tmpl = env
        .get_template(template)
        .map_err(|e| ReportError::Template {
            template: template.into(),
            message: format!("{e:#}"),
        })?;
    tmpl.render(ctx).map_err(|e| ReportError::Template {
        template: template.into(),
        message: format!("{e:#}"),
    })
}
