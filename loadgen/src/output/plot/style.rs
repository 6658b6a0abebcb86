//! How a chart tells its lines apart: one colour per model on every chart and every page
//! (every model of `Model::ALL` in its order, then an external server: always the same),
//! a dashed line for a second line of the same model in one chart, and the legend
//! beside the plot area, never over it.

use plotters::coord::Shift;
use plotters::prelude::*;

/// Tableau's 10 colours, then darker ones: the first are the models' (in `Model::ALL`'s
/// order), the next an external server's, the rest other names'.
pub const COLORS: [RGBColor; 16] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
    RGBColor(0, 63, 92),
    RGBColor(160, 80, 0),
    RGBColor(0, 100, 0),
    RGBColor(120, 0, 60),
    RGBColor(80, 40, 140),
    RGBColor(0, 0, 0),
];

/// Width of the legend beside a standalone chart, pixels.
pub const LEGEND_WIDTH: u32 = 250;

/// Colours fixed by name: every model's, then `external`'s.
const FIXED: usize = servers::Model::ALL.len() + 1;
// A new model takes the next fixed colour: some must be left for other names.
const _: () = assert!(FIXED + 4 <= COLORS.len(), "add colours to COLORS for the new model");

/// The colour of a series by the model that leads its name: fixed for every model and
/// `external`, else one of the others by a hash of the name's first word.
pub fn model_color(name: &str) -> RGBColor {
    let first = name.split_whitespace().next().unwrap_or("");
    let fixed = servers::Model::ALL.iter().position(|m| m.name() == first);
    match (fixed, first) {
        (Some(i), _) => COLORS[i],
        (None, "external") => COLORS[FIXED - 1],
        (None, other) => {
            let h = other
                .bytes()
                .fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
            COLORS[FIXED + (h as usize % (COLORS.len() - FIXED))]
        }
    }
}

/// How one line is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Look {
    /// Its model's colour.
    pub color: RGBColor,
    /// A later line of the same colour in the same chart is dashed.
    pub dashed: bool,
}

/// The look of each of `names`, in order.
pub fn looks<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<Look> {
    let mut seen: Vec<RGBColor> = Vec::new();
    names
        .into_iter()
        .map(|n| {
            let color = model_color(n);
            let dashed = seen.contains(&color);
            seen.push(color);
            Look { color, dashed }
        })
        .collect()
}

/// The legend drawn in its own area beside the plot: a line sample and the name per series.
pub fn draw_legend(area: &DrawingArea<SVGBackend<'_>, Shift>, names: &[&str], looks: &[Look]) -> anyhow::Result<()> {
    let font = ("sans-serif", 13).into_font();
    for (i, (name, look)) in names.iter().zip(looks).enumerate() {
        let y = 60 + 22 * i as i32;
        let style = look.color.stroke_width(2);
        if look.dashed {
            for k in 0..3 {
                area.draw(&PathElement::new(vec![(8 + 9 * k, y), (13 + 9 * k, y)], style))?;
            }
        } else {
            area.draw(&PathElement::new(vec![(8, y), (32, y)], style))?;
        }
        let shown: String = if name.chars().count() > 30 {
            name.chars().take(29).chain(std::iter::once('…')).collect()
        } else {
            name.to_string()
        };
        area.draw(&Text::new(shown, (38, y - 7), font.clone()))?;
    }
    Ok(())
}

/// The same legend as HTML, for a page that sets it beside the chart (`ul.legend`).
pub fn legend_html(names: &[&str], looks: &[Look]) -> String {
    let mut o = String::from("<ul class=\"legend\">");
    for (name, look) in names.iter().zip(looks) {
        let RGBColor(r, g, b) = look.color;
        let dash = if look.dashed { " stroke-dasharray=\"5 4\"" } else { "" };
        o.push_str(&format!(
            "<li><svg width=\"26\" height=\"10\"><line x1=\"1\" y1=\"5\" x2=\"25\" y2=\"5\" stroke=\"rgb({r},{g},{b})\" stroke-width=\"3\"{dash}/></svg>{}</li>",
            escape_xml(name)
        ));
    }
    o.push_str("</ul>");
    o
}

/// Text made safe inside XML and HTML.
pub fn escape_xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_model_and_an_external_server_have_colours_of_their_own() {
        let mut names: Vec<&str> = servers::Model::ALL.iter().map(|m| m.name()).collect();
        names.push("external");
        let colours: Vec<_> = names.iter().map(|n| model_color(n)).collect();
        for (i, c) in colours.iter().enumerate() {
            assert!(!colours[..i].contains(c), "{} shares its colour", names[i]);
        }
    }

    #[test]
    fn a_model_has_one_colour_everywhere_and_a_second_line_is_dashed() {
        assert_eq!(model_color("mio"), model_color("mio work wait:1ms"));
        assert_ne!(model_color("mio"), model_color("tokio"));
        let l = looks(["mio work none", "tokio", "mio work wait:1ms"]);
        assert_eq!((l[0].dashed, l[1].dashed, l[2].dashed), (false, false, true));
        assert_eq!(l[0].color, l[2].color);
        let models: Vec<RGBColor> = servers::Model::ALL.iter().map(|m| model_color(m.name())).collect();
        for (i, c) in models.iter().enumerate() {
            assert!(!models[..i].contains(c), "each model its own colour");
        }
    }
}
