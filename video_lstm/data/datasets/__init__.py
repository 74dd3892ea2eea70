"""Dataset kinds: manifests (which video has which label) from the layouts people already have.

Every layout is a registered *kind* (:mod:`.kinds`): a loader whose keyword-only signature is
the kind's options, and whether it is temporal. A :class:`DatasetSpec` (kind, root, options,
subsets) produces the manifest of a subset; the training DataModule, ``evaluate`` and
``calibrate`` read datasets through one.

Trimmed clips (a :class:`Manifest` of ``(path, label)``):

- ``folder``    :func:`from_folders`   ``root/<class>/<video>``            (:mod:`.folders`)
- ``ucf101``    :func:`from_ucf101`    ``classInd.txt``, ``trainlist0N.txt``, ``testlist0N.txt``
- ``hmdb51``    :func:`from_hmdb51`    ``<class>_test_split<N>.txt``       (:mod:`.splits`)
- ``kinetics``  :func:`from_kinetics`  ``label,youtube_id,time_start,time_end,split`` CSV
- ``list``      :func:`from_list`      ``path label`` lines or a ``path,label`` CSV (:mod:`.lists`)

Untrimmed videos with action segments (a :class:`TemporalManifest`; a model trained on them
gets an automatic ``background`` class, index 0):

- ``activitynet``   :func:`from_activitynet`   ActivityNet v1.3 JSON
- ``thumos14``      :func:`from_thumos14`      ``<Class>_<subset>.txt`` lists of ``video start end``
- ``segments_csv``  :func:`from_segments_csv`  ``video,start_s,end_s,label`` CSV (:mod:`.segments`)
- ``results``       :func:`from_results`       the project's own result JSON (:mod:`.results`)
- ``label-studio``  :func:`from_label_studio`  a Label Studio project's JSON export (TimelineLabels)
- ``cvat-video``    :func:`from_cvat_video`    CVAT for video 1.1 XML (tracks, tags)
- ``fiftyone``      :func:`from_fiftyone`      FiftyOne temporal detections (:mod:`.tools`)

Both manifests share one protocol and one validation (:mod:`.base`): missing files reported once
and skipped (or refused, ``missing="error"``), unknown labels and bad lines refused naming the
file and line, and ``num_classes == len(training_classes)`` (background counted where a model
has it).

A kind of your own, in one file (``video-lstm --plugin mykind.py train fit --data.kind mykind``;
``docs/EXTENDING.md`` has a complete example)::

    from pathlib import Path
    from video_lstm.data import register_dataset_kind
    from video_lstm.data.datasets import Manifest, finish_manifest

    def load(root: str | Path, *, subset: str = "train", missing: str = "skip") -> Manifest:
        \"\"\"Clips listed in ``root/<subset>.txt``, one ``file label`` a line.\"\"\"
        ...
        return finish_manifest(samples, class_names, source=root, missing=missing)

    register_dataset_kind("mykind", load, temporal=False)

The loader takes the root first, then keyword-only typed options (shown by ``--help``, checked
by name and type when a config sets them; an unknown one is refused naming the kind's options),
and ``subset`` if the dataset has named subsets. A temporal kind returns
:func:`finish_temporal`'s ``TemporalManifest``.
"""

from video_lstm.data.datasets.base import (
    BACKGROUND,
    MISSING_POLICIES,
    VIDEO_EXTENSIONS,
    Manifest,
    ManifestLike,
    TemporalManifest,
    TemporalSegment,
    UntrimmedVideo,
    annotation_path,
    check_missing,
    finish_manifest,
    finish_temporal,
    parse_segment,
    segment_frame_labels,
    text_lines,
    under_root,
    unreadable,
    video_file,
    window_labels,
)

# Importing the family modules (folders, lists, results, segments, splits, tools) registers the
# built-in kinds.
from video_lstm.data.datasets.folders import from_folders
from video_lstm.data.datasets.kinds import (
    DatasetKind,
    describe_dataset_kinds,
    get_dataset_kind,
    is_temporal,
    list_dataset_kinds,
    load_manifest,
    register_dataset_kind,
    unregister_dataset_kind,
)
from video_lstm.data.datasets.lists import KINETICS_PATTERN, from_kinetics, from_list
from video_lstm.data.datasets.results import from_results
from video_lstm.data.datasets.segments import from_activitynet, from_segments_csv, from_thumos14
from video_lstm.data.datasets.spec import DatasetSpec
from video_lstm.data.datasets.splits import from_hmdb51, from_ucf101, read_ucf101_classes
from video_lstm.data.datasets.tools import from_cvat_video, from_fiftyone, from_label_studio

__all__ = [
    "BACKGROUND",
    "KINETICS_PATTERN",
    "MISSING_POLICIES",
    "VIDEO_EXTENSIONS",
    "DatasetKind",
    "DatasetSpec",
    "Manifest",
    "ManifestLike",
    "TemporalManifest",
    "TemporalSegment",
    "UntrimmedVideo",
    "annotation_path",
    "check_missing",
    "describe_dataset_kinds",
    "finish_manifest",
    "finish_temporal",
    "from_activitynet",
    "from_cvat_video",
    "from_fiftyone",
    "from_label_studio",
    "from_folders",
    "from_hmdb51",
    "from_kinetics",
    "from_list",
    "from_results",
    "from_segments_csv",
    "from_thumos14",
    "from_ucf101",
    "get_dataset_kind",
    "is_temporal",
    "list_dataset_kinds",
    "load_manifest",
    "parse_segment",
    "read_ucf101_classes",
    "register_dataset_kind",
    "segment_frame_labels",
    "text_lines",
    "under_root",
    "unreadable",
    "unregister_dataset_kind",
    "video_file",
    "window_labels",
]
