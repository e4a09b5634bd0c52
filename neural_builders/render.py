"""Picture one record: the kept patches over the radiograph, its knowledge graph, and the bridge.

Left panel: the image (from a file, or rebuilt from the record's stored tiles on a dark canvas
when no file is given) with each retained patch outlined and tinted by its score (blue = low,
yellow, red = high, min-max over the record). Right panel: the KG, entities in columns by type
(modifiers, findings and devices, anatomy), coloured by type; *absent* entities are greyed with
a dashed border, *uncertain* ones have a dotted orange border; relations are labelled arrows.
The bridge is drawn as a magenta dashed line from its entity to its patch, which gets a thick
magenta outline. Entities in no relation sit in a row at the foot of the KG panel (in a column
they could lie on an edge between two other columns and hide it); a column node that a straight
edge runs through is moved along its column. The caption and the score colour bar are in a strip
under the image, so no patch (e.g. a highlighted one in a corner) covers them and the range text
is placed after the bar by its measured width. Drawn with Pillow only.

Images loaded through :func:`neural_builders.inputs.load_image` are already display-oriented
(MONOCHROME1 inverted), so the picture is "the right way round".
"""
from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from neural_format.format.record import ASSERTION_CODES, Record
from . import optional_deps

ASSERTION_NAMES = {code: name for name, code in ASSERTION_CODES.items()}
TYPE_COLOURS = {"finding": (214, 69, 65), "anatomy": (52, 120, 200), "device": (46, 160, 90),
                "modifier": (140, 100, 190), "observation_modifier": (140, 100, 190)}
OTHER_COLOUR = (120, 120, 120)
BRIDGE_COLOUR = (230, 0, 200)
BACKGROUND = (250, 250, 252)
CANVAS_DARK = (18, 18, 24)
HEADER_PX = 36
MARGIN = 12
PANEL_HEIGHT = 512  # the image panel's height in pixels (the figure's default scale)
KG_WIDTH = 560  # the knowledge-graph panel's width in pixels
LEGEND_PX = 22  # the strip under the image panel: what the colours mean and the score range
ISOLATED_ROW_PX = 34  # one row of entities without relations, at the foot of the KG panel
SCORE_STOPS = ((0.0, (40, 110, 255)), (0.5, (255, 215, 0)), (1.0, (255, 30, 0)))
# column of the KG panel by entity type (fractions of its width)
NODE_TOP = 40  # KG nodes start below the legend and the bridge lane
COLUMN_OF = {"modifier": 0.16, "observation_modifier": 0.16, "finding": 0.5, "device": 0.5, "anatomy": 0.84}


def score_colour(value: float) -> tuple[int, int, int]:
    """Piecewise-linear blue -> yellow -> red for ``value`` in [0, 1]."""
    value = float(np.clip(value, 0.0, 1.0))
    for (x0, c0), (x1, c1) in zip(SCORE_STOPS, SCORE_STOPS[1:]):
        if value <= x1:
            t = (value - x0) / (x1 - x0)
            red, green, blue = (int(round(a + t * (b - a))) for a, b in zip(c0, c1))
            return red, green, blue
    return SCORE_STOPS[-1][1]


def _font(size: int):
    ImageFont = optional_deps.load("PIL.ImageFont", needed_by="render")
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: fixed bitmap font
        return ImageFont.load_default()


@dataclass(frozen=True)
class Layout:
    """Pixel sizes of the figure: ``image_width`` x ``panel_height`` image panel, ``kg_width``
    graph panel, header and report footer; ``size`` is the whole PNG's (width, height)."""
    image_width: int
    panel_height: int
    kg_width: int
    footer_height: int

    @property
    def size(self) -> tuple[int, int]:
        return (self.image_width + self.kg_width + 3 * MARGIN,
                HEADER_PX + self.panel_height + LEGEND_PX + self.footer_height + 2 * MARGIN)


def _report_lines(report: Optional[str], width_px: int) -> list[str]:
    if not report:
        return []
    chars = max(30, width_px // 7)
    return textwrap.wrap("Report: " + " ".join(report.split()), chars)[:6]


def compute_layout(image_shape: tuple[int, int], report: Optional[str], *, panel_height: int = PANEL_HEIGHT,
                   kg_width: int = KG_WIDTH) -> Layout:
    h, w = image_shape
    image_width = max(1, int(round(w * panel_height / max(h, 1))))
    lines = _report_lines(report, image_width + kg_width)
    return Layout(image_width, int(panel_height), int(kg_width), 18 * len(lines) + (MARGIN if lines else 0))


def _planar(record: Record, slice_index: Optional[int]):
    """(row, col) boxes of the patches drawn, their record indices, and the image (H, W)."""
    geometry, positions = record.geometry, record.patch_positions
    if positions is None or geometry is None:  # what patch_boxes says of such a record
        raise ValueError(f"record {record.record_id!r} has no positions/geometry; boxes are unknown")
    boxes = record.patch_boxes()
    axes = geometry.axes
    index = np.arange(record.num_patches)
    if axes == 3:
        slices = positions[:, 0]
        if slice_index is None and record.bridge is not None and 0 <= record.bridge[0] < len(slices):
            slice_index = int(slices[record.bridge[0]])  # show the bridge when there is one
        if slice_index is None:
            slice_index = int(np.bincount(slices).argmax()) if slices.size else 0
        keep = slices == slice_index
        boxes = boxes[keep][:, [1, 2, 4, 5]]
        index = index[keep]
        return boxes, index, tuple(geometry.image_size[1:]), slice_index
    return boxes, index, tuple(geometry.image_size), None


def _tile_canvas(record: Record, boxes, index, image_size) -> np.ndarray:
    """Grayscale (H, W) uint8: tiles pasted at their boxes on a dark canvas."""
    Image = optional_deps.load("PIL.Image", needed_by="render")
    canvas = np.full(image_size, CANVAS_DARK[0], np.uint8)
    if record.tiles is None:
        return canvas
    tiles = record.tiles[index]
    if tiles.ndim == 4:  # 3-D tiles (1, h, w): the slice itself
        tiles = tiles[:, 0]
    values = tiles.astype(np.float64)
    if record.tiles.dtype == np.uint16:
        values = values / 65535.0 * 255.0
    elif record.tiles.dtype.kind == "f":
        values = values * 255.0 if values.max(initial=0) <= 1.0 else values
    values = np.clip(values, 0, 255).astype(np.uint8)
    for tile, (r0, c0, r1, c1) in zip(values, boxes):
        if r1 <= r0 or c1 <= c0:
            continue
        patch = Image.fromarray(tile, "L").resize((int(c1 - c0), int(r1 - r0)), Image.Resampling.BILINEAR)
        canvas[r0:r1, c0:c1] = np.asarray(patch)
    return canvas


def _dashed_line(draw, p0, p1, fill, width=1, dash=6, gap=4):
    (x0, y0), (x1, y1) = p0, p1
    length = math.hypot(x1 - x0, y1 - y0)
    if length == 0:
        return
    ux, uy = (x1 - x0) / length, (y1 - y0) / length
    t = 0.0
    while t < length:
        s = min(t + dash, length)
        draw.line([(x0 + ux * t, y0 + uy * t), (x0 + ux * s, y0 + uy * s)], fill=fill, width=width)
        t = s + gap


def _dashed_rect(draw, box, fill, width=1, dash=6, gap=4):
    x0, y0, x1, y1 = box
    for a, b in (((x0, y0), (x1, y0)), ((x1, y0), (x1, y1)), ((x1, y1), (x0, y1)), ((x0, y1), (x0, y0))):
        _dashed_line(draw, a, b, fill, width, dash, gap)


def _edge_point(box, towards):
    """Where the segment from the centre of ``box`` to ``towards`` leaves the box."""
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    dx, dy = towards[0] - cx, towards[1] - cy
    if dx == 0 and dy == 0:
        return cx, cy
    scale = min((x1 - x0) / 2 / abs(dx) if dx else math.inf, (y1 - y0) / 2 / abs(dy) if dy else math.inf)
    return cx + dx * scale, cy + dy * scale


def _arrow(draw, p0, p1, fill, width=2, head=9):
    draw.line([p0, p1], fill=fill, width=width)
    angle = math.atan2(p1[1] - p0[1], p1[0] - p0[0])
    left = (p1[0] - head * math.cos(angle - 0.4), p1[1] - head * math.sin(angle - 0.4))
    right = (p1[0] - head * math.cos(angle + 0.4), p1[1] - head * math.sin(angle + 0.4))
    draw.polygon([p1, left, right], fill=fill)


def _cubic(p0, c1, c2, p1, steps=32):
    """Points of the cubic Bezier curve p0 -> p1 with control points c1, c2."""
    return [tuple((1 - t) ** 3 * a + 3 * (1 - t) ** 2 * t * b + 3 * (1 - t) * t ** 2 * c + t ** 3 * d
                  for a, b, c, d in zip(p0, c1, c2, p1)) for t in np.linspace(0, 1, steps)]


def _order_columns(names: list[str], relations: np.ndarray, bridged: Optional[int]) -> dict[float, list[int]]:
    """Entities per column, ordered to keep relation arrows short and uncrossed.

    The middle column (findings, then devices) keeps mention order; each side column is sorted
    by the barycentre of its neighbours' rows in the middle column (the classic one-pass
    crossing-reduction heuristic), then the middle column is re-sorted against the sides. The
    bridged entity stays first so the bridge lane crosses no node.
    """
    columns: dict[float, list[int]] = {}
    for k in sorted(range(len(names)), key=lambda k: (names[k] == "device", k)):
        columns.setdefault(COLUMN_OF.get(names[k], 0.5), []).append(k)
    neighbours: dict[int, list[int]] = {k: [] for k in range(len(names))}
    for a, b in np.asarray(relations).reshape(-1, 2).tolist():
        if 0 <= a < len(names) and 0 <= b < len(names) and a != b:
            neighbours[a].append(b)
            neighbours[b].append(a)

    def rank(members: list[int], reference: set[float]) -> list[int]:
        row = {k: (i + 0.5) / len(col) for col_key, col in columns.items() if col_key in reference
               for i, k in enumerate(col)}
        def key(k):
            linked = [row[n] for n in neighbours[k] if n in row]
            return (k != bridged, sum(linked) / len(linked) if linked else 2.0, members.index(k))
        return sorted(members, key=key)

    middle = 0.5
    for fraction in list(columns):
        if fraction != middle:
            columns[fraction] = rank(columns[fraction], {middle})
    if middle in columns and len(columns) > 1:
        columns[middle] = rank(columns[middle], set(columns) - {middle})
    return columns


def isolated_entities(count: int, relations: np.ndarray, bridged: Optional[int]) -> list[int]:
    """Entities in no relation (other than to themselves), except the bridged one (its bridge lane
    runs from the top of the panel), in index order."""
    linked = {int(k) for pair in np.asarray(relations).reshape(-1, 2).tolist() if pair[0] != pair[1] for k in pair}
    return [k for k in range(count) if k not in linked and k != bridged]


def _pack_rows(widths: Sequence[float], row_width: float, gap: float) -> list[list[float]]:
    """Widths packed left to right into rows of at most ``row_width`` (a wider item gets a row)."""
    rows: list[list[float]] = []
    used = math.inf
    for width in widths:
        if not rows or used + gap + width > row_width:
            rows.append([])
            used = -gap
        rows[-1].append(width)
        used += gap + width
    return rows


def place_entities(draw, record: Record, names: Sequence[str], texts: Sequence[str], panel, font):
    """Boxes ``(x0, y0, x1, y1)`` of the KG nodes in the panel ``(x, y, width, height)``, and the
    top of the foot row of unrelated entities (None when there is none).

    Related entities go in columns by type (:func:`_order_columns`); entities in no relation go to
    row(s) at the foot of the panel, where no edge runs (in a column they could sit on an edge
    between two other columns and hide its label); then a column node that a straight edge
    between two other nodes runs through is moved up or down its column to the nearest free place.
    """
    kx, ky, kg_width, panel_height = panel
    bridged = record.bridge[1] if record.bridge is not None else None
    columns = _order_columns(list(names), record.relations, bridged)
    isolated = isolated_entities(record.num_entities, record.relations, bridged)

    def node_width(k):
        label = texts[k] if len(texts[k]) <= 24 else texts[k][:23] + "…"
        return draw.textlength(label, font=font) + 14

    rows = _pack_rows([node_width(k) for k in isolated], kg_width - 16, gap=10)
    rows = rows[:max(1, (panel_height // 3) // ISOLATED_ROW_PX)]  # at most a third of the panel
    isolated = isolated[:sum(len(row) for row in rows)]  # any others stay in their columns
    columns = {f: [k for k in members if k not in isolated] for f, members in columns.items()}
    columns = {f: members for f, members in columns.items() if members}
    foot = ISOLATED_ROW_PX * len(rows) + (16 if rows else 0)
    node_box: dict[int, tuple[float, float, float, float]] = {}
    top, usable = ky + NODE_TOP, panel_height - NODE_TOP - 8 - foot
    for fraction, members in columns.items():
        step = usable / len(members)
        for slot, k in enumerate(members):
            cx, cy = kx + fraction * kg_width, top + step * (slot + 0.5)
            width = node_width(k)
            node_box[k] = (cx - width / 2, cy - 11, cx + width / 2, cy + 11)
    _clear_crossings(node_box, record.relations, columns, bridged, top, top + usable)
    foot_top = None
    if rows:
        foot_top = ky + panel_height - foot
        queue = list(isolated)
        for r, row in enumerate(rows):
            x = kx + 8
            cy = foot_top + 16 + ISOLATED_ROW_PX * r + 12
            for width in row:
                k = queue.pop(0)
                node_box[k] = (x, cy - 11, x + width, cy + 11)
                x += width + 10
    return node_box, foot_top


def _centre(box) -> tuple[float, float]:
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


def segment_hits_box(p0, p1, box, pad: float = 3.0) -> bool:
    """Whether the segment p0-p1 passes through ``box`` grown by ``pad`` (Liang-Barsky clipping)."""
    x0, y0, x1, y1 = box[0] - pad, box[1] - pad, box[2] + pad, box[3] + pad
    dx, dy = p1[0] - p0[0], p1[1] - p0[1]
    t0, t1 = 0.0, 1.0
    for p, q in ((-dx, p0[0] - x0), (dx, x1 - p0[0]), (-dy, p0[1] - y0), (dy, y1 - p0[1])):
        if p == 0:
            if q < 0:
                return False
            continue
        t = q / p
        if p < 0:
            t0 = max(t0, t)
        else:
            t1 = min(t1, t)
        if t0 > t1:
            return False
    return True


def crossings(node_box, relations) -> list[tuple[int, int, int]]:
    """(node, a, b) for every node box a straight edge a-b between two other nodes in different
    columns runs through (same-column edges are drawn as bows beside the column)."""
    found = []
    for a, b in np.asarray(relations).reshape(-1, 2).tolist():
        if a == b or a not in node_box or b not in node_box:
            continue
        ca, cb = _centre(node_box[a]), _centre(node_box[b])
        if abs(ca[0] - cb[0]) < 1:
            continue
        found += [(k, a, b) for k, box in node_box.items() if k not in (a, b) and segment_hits_box(ca, cb, box)]
    return found


def _clear_crossings(node_box, relations, columns, bridged, top: float, bottom: float, passes: int = 3) -> None:
    """Move each column node an edge runs through to the nearest height in its column where no
    edge runs through it and it keeps clear of its neighbours (the bridged node stays: its lane)."""
    column_of = {k: f for f, members in columns.items() for k in members}
    for _ in range(passes):
        hit = {k for k, _, _ in crossings(node_box, relations) if k != bridged and k in column_of}
        if not hit:
            return
        for k in sorted(hit):
            x0, y0, x1, y1 = node_box[k]
            others = [node_box[j] for j in columns[column_of[k]] if j != k]
            for step in range(1, int(bottom - top) // 4):
                placed = False
                for dy in (4 * step, -4 * step):
                    box = (x0, y0 + dy, x1, y1 + dy)
                    if box[1] < top or box[3] > bottom:
                        continue
                    if any(box[1] < o[3] + 16 and o[1] < box[3] + 16 for o in others):
                        continue
                    trial = {**node_box, k: box}
                    if not any(j == k for j, _, _ in crossings(trial, relations)):
                        node_box[k] = box
                        placed = True
                        break
                if placed:
                    break


def render_record(record: Record, *, entity_types: Sequence[str] = (), relation_types: Sequence[str] = (),
                  label_names: Sequence[str] = (), image=None, panel_height: int = PANEL_HEIGHT, kg_width: int = KG_WIDTH,
                  slice_index: Optional[int] = None):
    """The figure as a ``PIL.Image`` (RGB) of size :func:`compute_layout` ``(...).size``.

    ``image`` is a :class:`~neural_builders.inputs.LoadedImage`, a path (loaded with
    :func:`~neural_builders.inputs.load_image`), a 2-D array in [0, 1], or None (rebuild from
    tiles). Vocabularies come from the collection metadata (``reader.meta``).
    """
    Image = optional_deps.load("PIL.Image", needed_by="render_record")
    ImageDraw = optional_deps.load("PIL.ImageDraw", needed_by="render_record")

    if record.geometry is None or record.patch_positions is None:
        raise ValueError(f"record {record.record_id!r} has no geometry/positions: nothing to place")
    boxes, index, image_size, slice_index = _planar(record, slice_index)
    if image is not None and not isinstance(image, np.ndarray) and not hasattr(image, "pixels"):
        from .inputs import load_image
        image = load_image(image)
    if image is not None:
        pixels = image.pixels if hasattr(image, "pixels") else np.asarray(image, np.float32)
        gray = np.clip(np.floor(pixels * 255.0 + 0.5), 0, 255).astype(np.uint8)
        source = "image"
    else:
        gray = _tile_canvas(record, boxes, index, image_size)
        source = "stored tiles" if record.tiles is not None else "no image"
    layout = compute_layout(gray.shape, record.report, panel_height=panel_height, kg_width=kg_width)
    scale_y = layout.panel_height / gray.shape[0]
    scale_x = layout.image_width / gray.shape[1]
    # boxes are in geometry pixels; the shown image may have another size
    box_scale_y = gray.shape[0] / image_size[0] * scale_y
    box_scale_x = gray.shape[1] / image_size[1] * scale_x

    figure = Image.new("RGB", layout.size, BACKGROUND)
    ox, oy = MARGIN, HEADER_PX + MARGIN
    shown = Image.fromarray(gray, "L").resize((layout.image_width, layout.panel_height), Image.Resampling.LANCZOS).convert("RGB")
    overlay = Image.new("RGBA", shown.size, (0, 0, 0, 0))
    odraw = ImageDraw.Draw(overlay)
    scores = record.patch_scores[index].astype(np.float64) if index.size else np.zeros(0)
    lo, hi = (float(scores.min()), float(scores.max())) if scores.size else (0.0, 1.0)
    norm = (scores - lo) / (hi - lo) if hi > lo else np.ones_like(scores)
    screen_boxes = {}
    for k, (r0, c0, r1, c1), value in zip(index, boxes, norm):
        rect = (c0 * box_scale_x, r0 * box_scale_y, c1 * box_scale_x - 1, r1 * box_scale_y - 1)
        colour = score_colour(value)
        odraw.rectangle(rect, fill=colour + (int(40 + 60 * value),), outline=colour + (230,), width=2)
        screen_boxes[int(k)] = rect
    shown = Image.alpha_composite(shown.convert("RGBA"), overlay).convert("RGB")
    figure.paste(shown, (ox, oy))
    draw = ImageDraw.Draw(figure)
    title_font, font, small = _font(16), _font(13), _font(11)

    labels = []
    for name, value in zip(label_names, record.labels):
        labels.append(f"{name}={'?' if np.isnan(value) else f'{value:g}'}")
    title = (f"{record.record_id}   patches kept: {record.num_patches}   entities: {record.num_entities}"
             f"   relations: {len(record.relation_types)}" + (f"   {', '.join(labels)}" if labels else "")
             + (f"   slice {slice_index}" if slice_index is not None else ""))
    draw.text((MARGIN, 10), title, fill=(20, 20, 20), font=title_font)
    # caption and colour bar below the image, never over it: a kept (or bridged) patch in a corner
    # would cover them, and text widths are measured so the range never runs into the bar
    strip_y = oy + layout.panel_height + 5
    caption = f"{source}; patch colour = score"
    draw.text((ox, strip_y), caption, fill=(40, 40, 50), font=small)
    bar_x = ox + draw.textlength(caption, font=small) + 10
    bar_len = max(20, min(100, int(layout.image_width - (bar_x - ox) - 10
                                    - draw.textlength(f"{lo:.3g} .. {hi:.3g}", font=small))))
    for i in range(bar_len):
        draw.line([(bar_x + i, strip_y + 3), (bar_x + i, strip_y + 11)], fill=score_colour(i / max(bar_len - 1, 1)))
    draw.text((bar_x + bar_len + 6, strip_y), f"{lo:.3g} .. {hi:.3g}", fill=(40, 40, 50), font=small)

    # -- knowledge graph panel ---------------------------------------------------------------
    kx, ky = ox + layout.image_width + MARGIN, oy
    draw.rectangle((kx, ky, kx + layout.kg_width, ky + layout.panel_height), fill=(255, 255, 255),
                   outline=(200, 200, 205))
    names = record.entity_names(list(entity_types)) if entity_types else ["unknown"] * record.num_entities
    texts = record.entity_text or [f"{n} {k}" for k, n in enumerate(names)]
    node_box, foot_top = place_entities(draw, record, names, texts, (kx, ky, layout.kg_width, layout.panel_height),
                                        font)
    if foot_top is not None:
        draw.line([(kx + 8, foot_top), (kx + layout.kg_width - 8, foot_top)], fill=(225, 225, 230))
        draw.text((kx + 8, foot_top + 2), "no relation:", fill=(110, 110, 110), font=small)
    rel_names = list(relation_types)
    for (a, b), code in zip(record.relations.tolist(), record.relation_types.tolist()):
        if a not in node_box or b not in node_box or a == b:
            continue
        ca = ((node_box[a][0] + node_box[a][2]) / 2, (node_box[a][1] + node_box[a][3]) / 2)
        cb = ((node_box[b][0] + node_box[b][2]) / 2, (node_box[b][1] + node_box[b][3]) / 2)
        name = rel_names[code] if 0 <= code < len(rel_names) else "related"
        colour = (90, 90, 100)
        if abs(ca[0] - cb[0]) < 1:  # same column: bow out to the right, clear of the nodes between
            lo, hi = sorted((ca[1], cb[1]))
            half = max((box[2] - ca[0] for box in node_box.values()
                        if abs((box[0] + box[2]) / 2 - ca[0]) < 1 and lo - 12 <= (box[1] + box[3]) / 2 <= hi + 12),
                       default=40)
            reach = ca[0] + 1.8 * (half + 24)
            c1, c2 = (reach, ca[1]), (reach, cb[1])
            points = _cubic(_edge_point(node_box[a], c1), c1, c2, _edge_point(node_box[b], c2))
            draw.line(points[:-1], fill=colour, width=2)
            _arrow(draw, points[-3], points[-1], colour)
            peak = points[len(points) // 2]
            mid = (peak[0] + 6 + draw.textlength(name, font=small) / 2, peak[1])
        else:
            p0, p1 = _edge_point(node_box[a], cb), _edge_point(node_box[b], ca)
            _arrow(draw, p0, p1, colour)
            mid = ((p0[0] + p1[0]) / 2, (p0[1] + p1[1]) / 2)
        tw = draw.textlength(name, font=small)
        draw.rectangle((mid[0] - tw / 2 - 2, mid[1] - 7, mid[0] + tw / 2 + 2, mid[1] + 7), fill=(255, 255, 255))
        draw.text((mid[0] - tw / 2, mid[1] - 7), name, fill=(60, 60, 70), font=small)
    for k, box in node_box.items():
        assertion = ASSERTION_NAMES.get(int(record.entity_assertions[k]), "not recorded") \
            if k < len(record.entity_assertions) else "not recorded"
        colour = TYPE_COLOURS.get(names[k], OTHER_COLOUR)
        label = texts[k] if len(texts[k]) <= 24 else texts[k][:23] + "…"
        if assertion == "absent":
            draw.rounded_rectangle(box, radius=6, fill=(236, 236, 236))
            _dashed_rect(draw, box, (130, 130, 130), width=2)
            draw.text((box[0] + 7, box[1] + 3), label, fill=(130, 130, 130), font=font)
            draw.text((box[0] + 2, box[3] + 1), "absent", fill=(130, 130, 130), font=small)
        else:
            light = tuple(int(c + (255 - c) * 0.78) for c in colour)
            draw.rounded_rectangle(box, radius=6, fill=light, outline=colour, width=2)
            if assertion == "uncertain":
                _dashed_rect(draw, box, (235, 140, 0), width=2, dash=2, gap=3)
                draw.text((box[0] + 2, box[3] + 1), "uncertain", fill=(200, 110, 0), font=small)
            draw.text((box[0] + 7, box[1] + 3), label, fill=(20, 20, 30), font=font)
    legend_x: float = kx + 8
    for name in ("finding", "anatomy", "device", "modifier"):
        draw.rectangle((legend_x, ky + 8, legend_x + 10, ky + 18), fill=TYPE_COLOURS[name])
        draw.text((legend_x + 14, ky + 6), name, fill=(50, 50, 60), font=small)
        legend_x += 20 + draw.textlength(name, font=small) + 8
    draw.text((legend_x, ky + 6), "dashed grey = absent", fill=(110, 110, 110), font=small)

    # -- bridge --------------------------------------------------------------------------------
    if record.bridge is not None:
        patch, entity = record.bridge
        if patch in screen_boxes:
            r = screen_boxes[patch]
            rect = (r[0] + ox, r[1] + oy, r[2] + ox, r[3] + oy)
            draw.rectangle(rect, outline=BRIDGE_COLOUR, width=3)
            target = ((rect[0] + rect[2]) / 2, (rect[1] + rect[3]) / 2)
            if entity in node_box:
                # route: up from the entity to a lane under the legend, left out of the panel, to the patch
                box = node_box[entity]
                start = ((box[0] + box[2]) / 2, box[1])
                lane_y = ky + 28
                lane_x = kx - MARGIN / 2
                for a, b in ((start, (start[0], lane_y)), ((start[0], lane_y), (lane_x, lane_y)),
                             ((lane_x, lane_y), target)):
                    _dashed_line(draw, a, b, BRIDGE_COLOUR, width=2)
                draw.rounded_rectangle(box, radius=6, outline=BRIDGE_COLOUR, width=3)
                draw.text((start[0] + 6, lane_y - 1), "bridge", fill=BRIDGE_COLOUR, font=small)

    y = oy + layout.panel_height + LEGEND_PX + MARGIN
    for line in _report_lines(record.report, layout.image_width + layout.kg_width):
        draw.text((MARGIN, y), line, fill=(40, 40, 50), font=font)
        y += 18
    return figure


def render_to_png(record: Record, out, **kwargs) -> tuple[int, int]:
    """Render and save as PNG; returns the (width, height) written."""
    figure = render_record(record, **kwargs)
    figure.save(out, format="PNG")
    return figure.size
