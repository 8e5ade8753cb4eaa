/**
 * Where the map's names go so that none is drawn over another: people at one place share a label
 * ("Alex, Sam"), and a label that would cover one already placed moves on, away from its point,
 * until it is clear. Sizes are in the map's drawing units, for its 14 px type.
 */

export interface Box {
  left: number;
  right: number;
  top: number;
  bottom: number;
}

/** A name to place: centred on `x`, its baseline at `y` if it is free, else moved `away` (-1 up, 1 down). */
export interface MapLabel {
  text: string;
  x: number;
  y: number;
  away: -1 | 1;
}

/** A 14 px character's width, generously: a guess too wide only moves a label that could have stayed. */
const CHAR_PX = 9;
const ASCENT_PX = 14;
const DESCENT_PX = 4;
const GAP_PX = 2;

function labelBox(text: string, x: number, y: number): Box {
  const half = (text.length * CHAR_PX) / 2;
  return { left: x - half, right: x + half, top: y - ASCENT_PX, bottom: y + DESCENT_PX };
}

function overlaps(a: Box, b: Box): boolean {
  return a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
}

/**
 * Baselines for `labels`, placed in order (the first keeps its place, so the most important come
 * first), clear of each other and of `obstacles` (the markers' dots). A label that would leave
 * the map (`height` high) tries the other way; if both are blocked it keeps its first place.
 */
export function placeLabels(labels: MapLabel[], obstacles: Box[], height: number): number[] {
  const placed = [...obstacles];
  return labels.map((label) => {
    const y =
      clearSpot(label, label.away, placed, height) ??
      clearSpot(label, label.away < 0 ? 1 : -1, placed, height) ??
      label.y;
    placed.push(labelBox(label.text, label.x, y));
    return y;
  });
}

/** The first baseline from the label's own, going `away`, where it covers nothing; null if it runs off the map. */
function clearSpot(label: MapLabel, away: -1 | 1, placed: Box[], height: number): number | null {
  // A point at the map's edge has its label start inside it.
  let y = Math.min(Math.max(label.y, ASCENT_PX), height - DESCENT_PX);
  // Each step clears one box, so there are never more steps than boxes.
  for (let step = 0; step <= placed.length; step++) {
    const box = labelBox(label.text, label.x, y);
    if (box.top < 0 || box.bottom > height) return null;
    const hit = placed.find((other) => overlaps(box, other));
    if (!hit) return y;
    y = away < 0 ? hit.top - GAP_PX - DESCENT_PX : hit.bottom + GAP_PX + ASCENT_PX;
  }
  return null;
}
