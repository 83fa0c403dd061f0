//! Server-side SVG charts: geometry computed here, drawn by templates/pages/partials.
//! Every chart carries a <title> and a <desc> summarising its data, and each page also
//! shows the numbers as a table.

use chrono::NaiveDate;
use serde::Serialize;

const ROW: f64 = 26.0;
const BAR: f64 = 18.0;

#[derive(Debug, Serialize)]
pub struct Tick {
    pub x: f64,
    pub y2: f64,
    pub text_y: f64,
    pub label: String,
}

#[derive(Debug, Serialize)]
pub struct Bar {
    pub label: String,
    pub value_text: String,
    pub class: &'static str,
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
    pub label_x: f64,
    pub value_x: f64,
    pub text_y: f64,
}

#[derive(Debug, Serialize)]
pub struct BarChart {
    pub id: String,
    pub title: String,
    pub desc: String,
    pub caption: String,
    pub width: f64,
    pub height: f64,
    pub ticks: Vec<Tick>,
    pub bars: Vec<Bar>,
}

/// One bar: its label, its value in `0..=max`, the text shown beside it, a CSS class.
pub struct BarInput {
    pub label: String,
    pub value: f64,
    pub text: String,
    pub class: &'static str,
}

/// Horizontal bars against a scale of `0..=max` with five grid lines (0, ¼, ½, ¾, max).
pub fn bar_chart(
    id: &str,
    title: &str,
    caption: &str,
    inputs: Vec<BarInput>,
    max: f64,
    tick_label: impl Fn(f64) -> String,
) -> BarChart {
    let width = 640.0;
    let label_width = 120.0;
    let plot_left = label_width + 8.0;
    let plot_width = width - plot_left - 56.0;
    let top = 8.0;
    let plot_bottom = top + ROW * inputs.len().max(1) as f64;
    let height = plot_bottom + 22.0;
    let max = if max > 0.0 { max } else { 1.0 };
    let scale = |value: f64| round1(plot_left + plot_width * (value / max).clamp(0.0, 1.0));
    let ticks = (0..=4)
        .map(|step| {
            let value = max * f64::from(step) / 4.0;
            Tick {
                x: scale(value),
                y2: plot_bottom,
                text_y: plot_bottom + 16.0,
                label: tick_label(value),
            }
        })
        .collect();
    let mut desc_parts = Vec::new();
    let bars = inputs
        .into_iter()
        .enumerate()
        .map(|(index, input)| {
            let y = top + ROW * index as f64 + (ROW - BAR) / 2.0;
            let bar_width = round1(scale(input.value) - plot_left);
            desc_parts.push(format!("{}: {}", input.label, input.text));
            Bar {
                x: plot_left,
                y: round1(y),
                width: bar_width.max(0.0),
                height: BAR,
                label_x: label_width,
                value_x: round1(plot_left + bar_width + 4.0),
                text_y: round1(y + BAR - 4.0),
                label: input.label,
                value_text: input.text,
                class: input.class,
            }
        })
        .collect::<Vec<_>>();
    let desc = if desc_parts.is_empty() {
        "No data yet.".to_string()
    } else {
        desc_parts.join("; ")
    };
    BarChart {
        id: id.into(),
        title: title.into(),
        desc,
        caption: caption.into(),
        width,
        height: round1(height),
        ticks,
        bars,
    }
}

#[derive(Debug, Serialize)]
pub struct TimelineRow {
    pub label: String,
    pub window_text: String,
    pub first_text: String,
    pub y: f64,
    pub height: f64,
    pub mid_y: f64,
    pub text_y: f64,
    pub label_x: f64,
    pub window_x: f64,
    pub window_width: f64,
    pub wait_x1: f64,
    pub first_x: f64,
}

#[derive(Debug, Serialize)]
pub struct TodayLine {
    pub x: f64,
    pub y2: f64,
}

#[derive(Debug, Serialize)]
pub struct Timeline {
    pub id: String,
    pub title: String,
    pub desc: String,
    pub caption: String,
    pub width: f64,
    pub height: f64,
    pub ticks: Vec<Tick>,
    pub today: Vec<TodayLine>,
    pub rows: Vec<TimelineRow>,
}

/// One planned cohort: its label, dosing window (inclusive) and first session date.
pub struct TimelineInput {
    pub label: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub first: NaiveDate,
}

/// Dosing windows as bars and first sessions as dots, on one date axis.
pub fn timeline(id: &str, inputs: &[TimelineInput], today: NaiveDate) -> Timeline {
    let width = 720.0;
    let label_width = 90.0;
    let plot_left = label_width + 10.0;
    let plot_right = width - 16.0;
    let top = 22.0;
    let start = inputs
        .iter()
        .map(|i| i.from)
        .chain([today])
        .min()
        .unwrap_or(today)
        - chrono::Duration::days(2);
    let end = inputs
        .iter()
        .map(|i| i.first)
        .chain([today])
        .max()
        .unwrap_or(today)
        + chrono::Duration::days(3);
    let span = (end - start).num_days().max(1) as f64;
    let x_of = |date: NaiveDate| {
        round1(plot_left + (plot_right - plot_left) * (date - start).num_days() as f64 / span)
    };
    let plot_bottom = top + ROW * 1.4 * inputs.len().max(1) as f64;
    let step = ((span / 6.0 / 7.0).ceil().max(1.0) * 7.0) as i64;
    let mut ticks = Vec::new();
    let mut tick = start;
    while tick <= end {
        ticks.push(Tick {
            x: x_of(tick),
            y2: plot_bottom,
            text_y: plot_bottom + 16.0,
            label: tick.format("%b %-d").to_string(),
        });
        tick += chrono::Duration::days(step);
    }
    let mut desc = Vec::new();
    let rows = inputs
        .iter()
        .enumerate()
        .map(|(index, input)| {
            let y = top + ROW * 1.4 * index as f64 + 4.0;
            let window_x = x_of(input.from);
            let window_end = x_of(input.to + chrono::Duration::days(1));
            let window_text = format!("{} to {}", input.from, input.to);
            let first_text = input.first.format("%a %Y-%m-%d").to_string();
            desc.push(format!(
                "{}: dosed {window_text}, first session {first_text}",
                input.label
            ));
            TimelineRow {
                label: input.label.clone(),
                window_text,
                first_text,
                y: round1(y),
                height: BAR,
                mid_y: round1(y + BAR / 2.0),
                text_y: round1(y + BAR - 4.0),
                label_x: label_width,
                window_x,
                window_width: round1((window_end - window_x).max(3.0)),
                wait_x1: window_end,
                first_x: x_of(input.first),
            }
        })
        .collect();
    Timeline {
        id: id.into(),
        title: "Dosing windows and first sessions".into(),
        desc: desc.join("; "),
        caption: "Bars: each planned cohort's dosing window. Dots: its first group session. \
                  The table below lists the same dates."
            .into(),
        width,
        height: round1(plot_bottom + 24.0),
        ticks,
        today: vec![TodayLine {
            x: x_of(today),
            y2: plot_bottom,
        }],
        rows,
    }
}

fn round1(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

pub fn percent(rate: Option<f64>) -> String {
    match rate {
        Some(rate) => format!("{:.0}%", rate * 100.0),
        None => "–".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_plot_and_describe_themselves() {
        let chart = bar_chart(
            "c",
            "Rates",
            "",
            vec![
                BarInput {
                    label: "S1".into(),
                    value: 1.0,
                    text: "100%".into(),
                    class: "",
                },
                BarInput {
                    label: "S2".into(),
                    value: 0.5,
                    text: "50%".into(),
                    class: "",
                },
            ],
            1.0,
            |v| format!("{v}"),
        );
        assert_eq!(chart.bars.len(), 2);
        assert!((chart.bars[0].width - 2.0 * chart.bars[1].width).abs() < 0.2);
        assert_eq!(chart.desc, "S1: 100%; S2: 50%");
        assert_eq!(chart.ticks.len(), 5);
    }

    #[test]
    fn a_timeline_places_first_sessions_after_windows() {
        let d = |day| NaiveDate::from_ymd_opt(2025, 3, day).unwrap_or_default();
        let line = timeline(
            "t",
            &[TimelineInput {
                label: "A".into(),
                from: d(1),
                to: d(10),
                first: d(18),
            }],
            d(12),
        );
        let row = &line.rows[0];
        assert!(row.window_x < row.wait_x1 && row.wait_x1 < row.first_x);
        assert!(line.desc.contains("first session Tue 2025-03-18"));
    }
}
