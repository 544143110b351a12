"""Pictures of SIMAT retrieval: delta geometry, query/retrieved grids, and the interactive explorer.

Introduced in notebook 02_simat_delta_retrieval.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure

from tutorlib.plots import panel_figure, to_display
from tutorlib.world.views.simat import FIELDS, SimatData, Transformation

from .retrieval import Embeddings, Judge, delta_queries, oracle_judge, retrieve, word_text


def plot_delta_geometry(emb: Embeddings, db: SimatData, field: str, value: str, target: str, lam: float = 1.0) -> Figure:
    """2-D projection (PCA of the image embeddings involved) of images whose `field` is `value` (grey), their
    queries x + lam (w(target) - w(value)) (arrows), and the images whose `field` is `target` (orange).

    Introduced in notebook 02_simat_delta_retrieval.
    """
    k = FIELDS.index(field)
    sources = [i for i, t in enumerate(db.triplets) if t[k] == value]
    targets = [i for i, t in enumerate(db.triplets) if t[k] == target]
    if not sources or not targets:
        raise ValueError(f"no database image has {field} = {value!r} or {field} = {target!r}")
    x = emb.images[sources]
    q = x + lam * (emb.word(word_text(field, target)) - emb.word(word_text(field, value)))
    points = torch.cat([x, q, emb.images[targets]])
    centred = points - points.mean(dim=0)
    _, _, v = torch.linalg.svd(centred, full_matrices=False)
    xy = (centred @ v[:2].T).numpy()
    n = len(sources)
    figure, ax = plt.subplots(figsize=(4.6, 3.6))
    ax.scatter(*xy[2 * n :].T, s=12, c="tab:orange", label=f"images with {target}")
    ax.scatter(*xy[:n].T, s=12, c="grey", label=f"images with {value}")
    for a, b in zip(xy[:n], xy[n : 2 * n]):
        ax.annotate("", b, a, arrowprops=dict(arrowstyle="->", color="tab:blue", alpha=0.35, lw=0.8))
    ax.plot([], [], color="tab:blue", label=f"x + {lam} (w({target}) - w({value}))")
    ax.set_title(f"{field}: {value} -> {target}", fontsize=9)
    ax.legend(fontsize=7, loc="best")
    ax.set_xticks([]), ax.set_yticks([])
    figure.tight_layout()
    return figure


def _draw_query(axes: list, db: SimatData, t: Transformation, hits: list[int], judge: Judge) -> None:
    """The source image of query `t` in axes[0], then its retrieved images, each titled with `judge`'s verdict."""
    axes[0].imshow(to_display(db.image(db.position(region_id=t.region_id))))
    axes[0].set_title(f"{t.value} -> {t.target}", fontsize=8)
    for col, hit in enumerate(hits, start=1):
        ok = judge(db, hit, t)
        axes[col].imshow(to_display(db.image(hit)))
        axes[col].set_title(f"#{col} {'yes' if ok else 'no'}", fontsize=8, color="green" if ok else "red")
    for ax in axes:
        ax.axis("off")


def show_retrievals(db: SimatData, emb: Embeddings, queries: list[Transformation], lam: float, k: int = 4,
                    judge: Judge = oracle_judge) -> Figure:
    """One row per query: the source image, then the top-k retrieved, each marked by `judge` (yes / no; the scene
    oracle by default, a clear error without scenes).

    Introduced in notebook 02_simat_delta_retrieval.
    """
    ids = retrieve(emb, db, queries, delta_queries(emb, db, queries, lam), k=k)
    figure, axes = plt.subplots(len(queries), k + 1, figsize=(1.25 * (k + 1), 1.5 * len(queries)), squeeze=False)
    for row, (t, hits) in enumerate(zip(queries, ids)):
        _draw_query(list(axes[row]), db, t, hits.tolist(), judge)
    figure.tight_layout()
    return figure


def custom_query(db: SimatData, position: int, field: str, target: str) -> Transformation:
    """A transformation query for any database image: change its `field` to `target`.

    Introduced in notebook 02_simat_delta_retrieval.
    """
    if not 0 <= position < len(db):
        raise ValueError(f"image {position} is not in the database (0 to {len(db) - 1})")
    if field not in FIELDS:
        raise ValueError(f"field must be one of {list(FIELDS)}, got {field!r}")
    choices = sorted({t[FIELDS.index(field)] for t in db.triplets})
    if target not in choices:
        raise ValueError(f"{target!r} is not a {field} of this database; choose one of {choices}")
    value = db.triplets[position][FIELDS.index(field)]
    return Transformation(db.region_ids[position], field, value, target, -1, -1, 1, False)


def explore_query(db: SimatData, emb: Embeddings, position: int = 0, field: str = "subj", target: str | None = None,
                  lam: float = 1.0, k: int = 5) -> Figure:
    """The widget's picture: the chosen image, and the top-k images retrieved for the transformation.

    Introduced in notebook 02_simat_delta_retrieval.
    """
    if target is None:
        target = next(v for v in sorted({t[FIELDS.index(field)] for t in db.triplets})
                      if v != db.triplets[position][FIELDS.index(field)])
    query = custom_query(db, position, field, target)
    [hits] = retrieve(emb, db, [query], delta_queries(emb, db, [query], lam), k=k)
    figure, axes = panel_figure(k + 1)
    _draw_query(axes, db, query, hits.tolist(), oracle_judge)
    return figure


def simat_explorer(db: SimatData, settings: dict[str, Embeddings]):
    """ipywidgets panel: image, field, target word, lambda and head setting -> top-5 retrieved with the oracle's verdict.

    Introduced in notebook 02_simat_delta_retrieval.
    """
    import ipywidgets as widgets
    from IPython.display import display

    values = {f: sorted({t[k] for t in db.triplets}) for k, f in enumerate(FIELDS)}
    image = widgets.IntSlider(0, 0, len(db) - 1, description="image", continuous_update=False)
    field = widgets.Dropdown(options=list(FIELDS), value="subj", description="field")
    target = widgets.Dropdown(options=values["subj"], value=values["subj"][1], description="target")
    lam = widgets.FloatSlider(1.0, min=0.0, max=5.0, step=0.25, description="lambda", continuous_update=False)
    setting = widgets.Dropdown(options=list(settings), description="model")
    field.observe(lambda change: setattr(target, "options", values[change["new"]]), names="value")

    def show(image, field, target, lam, setting):
        figure = explore_query(db, settings[setting], image, field, target, lam)
        display(figure)
        plt.close(figure)

    return widgets.interactive(show, image=image, field=field, target=target, lam=lam, setting=setting)
