//! A simulation drawn as SVG (plotters), for `batchfan scale simulate --plot`: four panels over
//! the same minutes, each with its legend beside it (never over the data): messages arriving,
//! the backlog (with the messages already waiting longer than the objective in red), the
//! workers (ready as a filled area, asked for as a line over it, so neither hides the other),
//! and the oldest waiting message's age against the objective. Messages still waiting when the
//! simulation ended are written on the age panel. Counts have integer axes.

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordi64;
use plotters::prelude::*;

use crate::error::ScaleError;
use crate::simulate::SimResult;

fn draw_error(e: impl std::fmt::Display) -> ScaleError {
    ScaleError::Io(format!("drawing the plot: {e}").into())
}

const WIDTH: u32 = 1000;
const PANEL: u32 = 210;
const LEGEND: u32 = 190;
const ARRIVALS: RGBColor = RGBColor(90, 90, 90);
const BACKLOG: RGBColor = RGBColor(31, 119, 180);
const LATE: RGBColor = RGBColor(214, 39, 40);
const READY: RGBColor = RGBColor(152, 223, 138);
const ASKED: RGBColor = RGBColor(31, 60, 160);
const AGE: RGBColor = RGBColor(148, 103, 189);

/// How a legend entry is drawn.
enum Mark {
    Line(RGBColor, u32),
    Dashed(RGBColor),
    Area(RGBColor),
    Text,
}

/// The legend of a panel, in the column to its right.
fn legend(area: &DrawingArea<SVGBackend<'_>, Shift>, entries: &[(Mark, String)]) -> Result<(), ScaleError> {
    let font = ("sans-serif", 13).into_font();
    for (i, (mark, label)) in entries.iter().enumerate() {
        let y = 40 + 22 * i as i32;
        match mark {
            Mark::Line(color, width) => {
                area.draw(&PathElement::new(vec![(8, y), (34, y)], color.stroke_width(*width))).map_err(draw_error)?
            }
            Mark::Dashed(color) => {
                for x in [8, 20, 32] {
                    area.draw(&PathElement::new(vec![(x, y), (x + 6, y)], color.stroke_width(2)))
                        .map_err(draw_error)?;
                }
            }
            Mark::Area(color) => {
                area.draw(&Rectangle::new([(8, y - 6), (34, y + 6)], color.filled())).map_err(draw_error)?
            }
            Mark::Text => {}
        }
        area.draw(&Text::new(label.clone(), (42, y - 7), font.clone())).map_err(draw_error)?;
    }
    Ok(())
}

type CountChart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordi64, RangedCoordi64>>;

/// A panel of counts over `minutes`, up to `top` (with headroom), integer axes.
fn count_chart<'a, 'b>(
    area: &'a DrawingArea<SVGBackend<'b>, Shift>,
    caption: &str,
    y_desc: &str,
    minutes: i64,
    top: i64,
) -> Result<CountChart<'a, 'b>, ScaleError> {
    let mut chart = ChartBuilder::on(area)
        .margin(8)
        .x_label_area_size(22)
        .y_label_area_size(60)
        .caption(caption, ("sans-serif", 15))
        .build_cartesian_2d(0i64..minutes, 0i64..top + top / 10 + 1)
        .map_err(draw_error)?;
    chart.configure_mesh().y_desc(y_desc).draw().map_err(draw_error)?;
    Ok(chart)
}

/// The area under a step line, closed along the x axis.
fn under(mut points: Vec<(i64, i64)>, minutes: i64, color: RGBAColor) -> Polygon<(i64, i64)> {
    points.insert(0, (0, 0));
    points.push((minutes, 0));
    Polygon::new(points, color.filled())
}

/// Draws the run; `slo` (seconds) draws the objective on the age panel.
pub fn svg(result: &SimResult, title: &str, slo: Option<f64>) -> Result<String, ScaleError> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (WIDTH, 40 + 4 * PANEL)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        let root = root.titled(title, ("sans-serif", 20)).map_err(draw_error)?;
        let panels = root.split_evenly((4, 1));
        let minutes = result.minutes.len().max(1) as i64;
        let steps = |value: &dyn Fn(usize) -> i64| -> Vec<(i64, i64)> {
            let mut points = Vec::new();
            for (i, m) in result.minutes.iter().enumerate() {
                let v = value(i);
                points.push((m.minute as i64, v));
                points.push((m.minute as i64 + 1, v));
            }
            points
        };

        // 1. Arrivals.
        let (plot, side) = panels[0].split_horizontally(WIDTH - LEGEND);
        let top = result.minutes.iter().map(|m| m.arrived).max().unwrap_or(0).max(1) as i64;
        let mut chart = count_chart(&plot, "messages arriving per minute", "messages", minutes, top)?;
        chart
            .draw_series(result.minutes.iter().filter(|m| m.arrived > 0).map(|m| {
                Rectangle::new([(m.minute as i64, 0), (m.minute as i64 + 1, m.arrived as i64)], ARRIVALS.filled())
            }))
            .map_err(draw_error)?;
        let total: u64 = result.minutes.iter().map(|m| m.arrived).sum();
        legend(&side, &[(Mark::Area(ARRIVALS), format!("arrived ({total} in all)"))])?;

        // 2. Backlog.
        let (plot, side) = panels[1].split_horizontally(WIDTH - LEGEND);
        let top = result.minutes.iter().map(|m| m.backlog).max().unwrap_or(0).max(1) as i64;
        let mut chart = count_chart(&plot, "backlog", "messages", minutes, top)?;
        let mut entries = vec![(Mark::Line(BACKLOG, 2), "waiting or in flight".to_string())];
        if slo.is_some() {
            let late = steps(&|i| result.minutes[i].over_slo as i64);
            if late.iter().any(|p| p.1 > 0) {
                chart.draw_series(std::iter::once(under(late, minutes, LATE.mix(0.6)))).map_err(draw_error)?;
            }
            entries.push((Mark::Area(LATE), "waiting past the SLO".to_string()));
        }
        chart
            .draw_series(LineSeries::new(steps(&|i| result.minutes[i].backlog as i64), BACKLOG.stroke_width(2)))
            .map_err(draw_error)?;
        legend(&side, &entries)?;

        // 3. Workers: ready (area) under asked for (line).
        let (plot, side) = panels[2].split_horizontally(WIDTH - LEGEND);
        let top = result.minutes.iter().map(|m| m.capacity.max(m.ready)).max().unwrap_or(0).max(1) as i64;
        let mut chart = count_chart(&plot, "workers", "workers", minutes, top)?;
        let ready = steps(&|i| i64::from(result.minutes[i].ready));
        chart.draw_series(std::iter::once(under(ready, minutes, READY.to_rgba()))).map_err(draw_error)?;
        chart
            .draw_series(LineSeries::new(steps(&|i| i64::from(result.minutes[i].capacity)), ASKED.stroke_width(2)))
            .map_err(draw_error)?;
        legend(
            &side,
            &[
                (Mark::Line(ASKED, 2), format!("asked for (peak {})", result.peak_capacity)),
                (Mark::Area(READY), "ready".to_string()),
                (Mark::Text, format!("{:.2} task-hours", result.task_hours)),
            ],
        )?;

        // 4. Oldest waiting message's age, against the objective.
        let (plot, side) = panels[3].split_horizontally(WIDTH - LEGEND);
        let top = result.minutes.iter().map(|m| m.oldest_age).fold(slo.unwrap_or(0.0), f64::max).max(1.0);
        let mut chart = ChartBuilder::on(&plot)
            .margin(8)
            .x_label_area_size(36)
            .y_label_area_size(60)
            .caption("oldest waiting message's age", ("sans-serif", 15))
            .build_cartesian_2d(0i64..minutes, 0f64..top * 1.08)
            .map_err(draw_error)?;
        chart
            .configure_mesh()
            .x_desc("minute")
            .y_desc("seconds")
            .y_label_formatter(&|v| format!("{v:.0}"))
            .draw()
            .map_err(draw_error)?;
        chart
            .draw_series(LineSeries::new(
                result.minutes.iter().map(|m| (m.minute as i64 + 1, m.oldest_age)),
                AGE.stroke_width(2),
            ))
            .map_err(draw_error)?;
        let mut entries = vec![(Mark::Line(AGE, 2), format!("oldest age (worst {:.0} s)", result.worst_age))];
        if let Some(slo) = slo {
            chart
                .draw_series(DashedLineSeries::new(vec![(0, slo), (minutes, slo)], 8, 5, LATE.stroke_width(2)))
                .map_err(draw_error)?;
            entries.push((Mark::Dashed(LATE), format!("SLO {slo:.0} s ({} over)", result.slo_violations)));
        }
        if result.waiting > 0 {
            let last = result.minutes.last().map_or(0, |m| m.minute as i64 + 1);
            chart
                .draw_series(std::iter::once(Circle::new((last, result.oldest_waiting_age), 6, LATE.filled())))
                .map_err(draw_error)?;
            chart
                .draw_series(std::iter::once(Text::new(
                    format!(
                        "{} messages never started: oldest waited {:.0} s",
                        result.waiting, result.oldest_waiting_age
                    ),
                    (minutes / 20, top),
                    ("sans-serif", 14).into_font().color(&LATE),
                )))
                .map_err(draw_error)?;
            entries.push((Mark::Area(LATE), format!("{} still waiting at the end", result.waiting)));
        }
        legend(&side, &entries)?;
        root.present().map_err(draw_error)?;
    }
    Ok(out)
}
