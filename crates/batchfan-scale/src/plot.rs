//! Capacity and backlog over time, as SVG (plotters), for `batchfan scale simulate --plot`.

use plotters::prelude::*;

use crate::error::ScaleError;
use crate::simulate::SimResult;

fn draw_error(e: impl std::fmt::Display) -> ScaleError {
    ScaleError::Io(format!("drawing the plot: {e}").into())
}

/// Two panels sharing the time axis (minutes): the backlog (messages waiting or in flight) and
/// the capacity (workers asked for and ready). Returns the SVG document.
pub fn svg(result: &SimResult, title: &str) -> Result<String, ScaleError> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (960, 640)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        let root = root.titled(title, ("sans-serif", 22)).map_err(draw_error)?;
        let (top, bottom) = root.split_vertically(300);
        let minutes = result.minutes.len().max(1) as f64;
        let backlog_max = result.minutes.iter().map(|m| m.backlog).max().unwrap_or(0).max(1) as f64;
        let capacity_max = result.minutes.iter().map(|m| m.capacity.max(m.ready)).max().unwrap_or(0).max(1) as f64;

        let mut chart = ChartBuilder::on(&top)
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(70)
            .caption("backlog (messages waiting or in flight)", ("sans-serif", 16))
            .build_cartesian_2d(0f64..minutes, 0f64..backlog_max * 1.05)
            .map_err(draw_error)?;
        chart.configure_mesh().x_desc("minute").y_desc("messages").draw().map_err(draw_error)?;
        chart
            .draw_series(LineSeries::new(result.minutes.iter().map(|m| (m.minute as f64, m.backlog as f64)), &RED))
            .map_err(draw_error)?
            .label("backlog")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
        chart.configure_series_labels().border_style(BLACK).draw().map_err(draw_error)?;

        let mut chart = ChartBuilder::on(&bottom)
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(70)
            .caption("capacity (workers)", ("sans-serif", 16))
            .build_cartesian_2d(0f64..minutes, 0f64..capacity_max * 1.1)
            .map_err(draw_error)?;
        chart.configure_mesh().x_desc("minute").y_desc("workers").draw().map_err(draw_error)?;
        chart
            .draw_series(LineSeries::new(
                result.minutes.iter().map(|m| (m.minute as f64, f64::from(m.capacity))),
                &BLUE,
            ))
            .map_err(draw_error)?
            .label("asked for")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
        chart
            .draw_series(LineSeries::new(result.minutes.iter().map(|m| (m.minute as f64, f64::from(m.ready))), &GREEN))
            .map_err(draw_error)?
            .label("ready")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], GREEN));
        chart.configure_series_labels().border_style(BLACK).draw().map_err(draw_error)?;
        root.present().map_err(draw_error)?;
    }
    Ok(out)
}
