//! Accessibility basics checked in the page itself: no horizontal scrolling at the browser's
//! size, text contrast by the WCAG formula over every visible text element, and the order
//! in which Tab moves the focus.

use serde_json::Value;

use super::cdp::Browser;

/// WCAG 2 AA: 4.5:1 for body text, 3:1 for large text (24 px, or 18.66 px bold).
const CONTRAST_SCRIPT: &str = r##"(() => {
  const parse = (text) => {
    const match = /^rgba?\(([^)]*)\)$/.exec(text.trim());
    if (!match) return null;
    const parts = match[1].split(/[\s,\/]+/).filter(Boolean).map(Number);
    return [parts[0], parts[1], parts[2], parts.length > 3 ? parts[3] : 1];
  };
  const over = (top, bottom) => [0, 1, 2].map((i) => top[i] * top[3] + bottom[i] * (1 - top[3])).concat([1]);
  const unparsed = [];
  // The colour behind an element: its own and its ancestors' backgrounds composed down to
  // the first opaque one (the canvas is white).
  const background = (element) => {
    const layers = [];
    for (let node = element; node; node = node.parentElement) {
      const text = getComputedStyle(node).backgroundColor;
      const colour = parse(text);
      if (!colour) { unparsed.push(text); continue; }
      if (colour[3] > 0) layers.push(colour);
      if (colour[3] >= 1) break;
      if (getComputedStyle(node).backgroundImage !== "none") unparsed.push(`background image on ${node.tagName}`);
    }
    return layers.reverse().reduce((below, layer) => over(layer, below), [255, 255, 255, 1]);
  };
  const luminance = (colour) => {
    const [r, g, b] = colour.slice(0, 3).map((value) => {
      const v = value / 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const describe = (element) => element.tagName.toLowerCase() + (element.id ? `#${element.id}` : "")
    + (element.className && typeof element.className === "string" ? `.${element.className.trim().split(/\s+/).join(".")}` : "");
  const elements = new Set();
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (node.textContent.trim() && node.parentElement) elements.add(node.parentElement);
  }
  for (const field of document.querySelectorAll("input, select")) {
    if (field.type !== "checkbox" && field.type !== "range" && field.value) elements.add(field);
  }
  const width = document.documentElement.clientWidth;
  const results = [];
  for (const element of elements) {
    if (element.closest("option, script, style, title")) continue;
    if (!element.checkVisibility({ visibilityProperty: true, opacityProperty: true })) continue;
    const box = element.getBoundingClientRect();
    // Visually hidden (a screen reader's label) or moved off the page (the skip link).
    if (box.width <= 1 || box.height <= 1 || box.right <= 0 || box.left >= width) continue;
    // WCAG exempts inactive controls.
    if (element.closest(":disabled")) continue;
    const style = getComputedStyle(element);
    let opacity = 1;
    for (let node = element; node; node = node.parentElement) opacity *= Number(getComputedStyle(node).opacity);
    const fg = parse(style.color);
    if (!fg) { unparsed.push(style.color); continue; }
    const bg = background(element);
    const text = over([fg[0], fg[1], fg[2], fg[3] * opacity], bg);
    const [light, dark] = [luminance(text), luminance(bg)].sort((a, b) => b - a);
    const ratio = (light + 0.05) / (dark + 0.05);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
    results.push({
      element: describe(element),
      text: (element.value || element.textContent).trim().slice(0, 40),
      color: style.color,
      background: `rgb(${bg.slice(0, 3).map(Math.round).join(", ")})`,
      ratio: Math.round(ratio * 100) / 100,
      needed: large ? 3 : 4.5,
    });
  }
  const failing = results.filter((result) => result.ratio < result.needed).sort((a, b) => a.ratio - b.ratio);
  return { checked: results.length, failing: failing.slice(0, 8), failures: failing.length, unparsed: [...new Set(unparsed)] };
})()"##;

/// The page's width against the window's, and the elements that stick out past it.
const OVERFLOW_SCRIPT: &str = r##"(() => {
  const root = document.documentElement;
  const width = root.clientWidth;
  const wide = [...document.querySelectorAll("body *")]
    .filter((element) => element.getBoundingClientRect().right > width + 0.5)
    .slice(0, 6)
    .map((element) => `${element.tagName.toLowerCase()}${element.id ? "#" + element.id : ""} right=${Math.round(element.getBoundingClientRect().right)}: ${element.textContent.trim().slice(0, 50)}`);
  return { scrollWidth: root.scrollWidth, clientWidth: width, wide };
})()"##;

/// The tabbable elements in document order: what Tab should visit, one after the other.
const TABBABLE_SCRIPT: &str = r##"(() => {
  const describe = (element) => `${element.tagName.toLowerCase()}${element.id ? "#" + element.id : ""} ${(element.getAttribute("aria-label") || element.textContent || element.value || "").trim().slice(0, 40)}`;
  window.describeFocus = () => document.activeElement ? describe(document.activeElement) : null;
  const positive = [...document.querySelectorAll("[tabindex]")].filter((element) => element.tabIndex > 0).map(describe);
  const order = [...document.querySelectorAll("a[href], button, input, select, textarea, [tabindex]")]
    .filter((element) => element.tabIndex >= 0 && !element.disabled && !element.closest("dialog:not([open])")
      && element.checkVisibility({ visibilityProperty: true }))
    .map(describe);
  return { positive, order };
})()"##;

/// The focused element is drawn with a visible outline (keyboard focus, `:focus-visible`).
const FOCUS_VISIBLE_SCRIPT: &str = r##"(() => {
  const element = document.activeElement;
  if (!element || element === document.body) return false;
  const style = getComputedStyle(element);
  return element.matches(":focus-visible") && style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2;
})()"##;

/// Asserts the page fits the window's width and every visible text has enough contrast.
pub async fn assert_readable(browser: &Browser, page: &str) {
    let overflow = browser.eval(OVERFLOW_SCRIPT).await;
    let [scroll, client] = [&overflow["scrollWidth"], &overflow["clientWidth"]]
        .map(|width| width.as_f64().expect("a width in pixels"));
    assert!(scroll <= client, "{page} scrolls sideways at 1280×800: {overflow:#}");
    let contrast = browser.eval(CONTRAST_SCRIPT).await;
    assert_eq!(contrast["unparsed"], Value::Array(Vec::new()), "{page}: colours not understood");
    assert!(
        contrast["checked"].as_u64() >= Some(5),
        "{page}: too few text elements checked for contrast: {contrast:#}"
    );
    assert_eq!(
        contrast["failures"].as_u64(),
        Some(0),
        "{page}: text below WCAG AA contrast, worst first: {:#}",
        contrast["failing"]
    );
}

/// Asserts that Tab, pressed from the top of a freshly loaded page, visits every tabbable
/// element in document order (none forced ahead with a positive `tabindex`), each drawn
/// with a visible focus outline; `first` are the descriptions the visit starts with.
pub async fn assert_tab_order(browser: &Browser, page: &str, first: &[&str]) {
    let tabbable = browser.eval(TABBABLE_SCRIPT).await;
    assert_eq!(tabbable["positive"], Value::Array(Vec::new()), "{page}: positive tabindex");
    let order: Vec<String> = tabbable["order"]
        .as_array()
        .expect("a list of tabbable elements")
        .iter()
        .map(|element| element.as_str().expect("a description").to_owned())
        .collect();
    assert!(order.len() >= first.len(), "{page}: only {order:#?} can take the focus");
    for (position, (found, expected)) in order.iter().zip(first).enumerate() {
        assert!(
            found.starts_with(expected),
            "{page}: tabbable element {position} is {found}, expected {expected}; all: {order:#?}"
        );
    }
    let mut visited = Vec::new();
    for expected in &order {
        browser.key("Tab", "Tab", 9).await;
        let focused = browser.eval("window.describeFocus()").await;
        visited.push(focused.as_str().unwrap_or("nothing").to_owned());
        assert_eq!(
            focused.as_str(),
            Some(expected.as_str()),
            "{page}: Tab went to {focused} where the order says {expected}; visited {visited:#?} of {order:#?}"
        );
        assert_eq!(
            browser.eval(FOCUS_VISIBLE_SCRIPT).await,
            Value::Bool(true),
            "{page}: no visible focus outline on {expected}"
        );
    }
}
