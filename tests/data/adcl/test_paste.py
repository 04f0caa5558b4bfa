"""Occlusion invariants and hand-checked cases of the pure ADCL paste operations."""

import functools

import numpy as np
import pytest

from unlock.classes import K2B
from unlock.data.adcl.paste import MIX_MODES, paste_region
from unlock.data.adcl.paste import paste_objects as _paste_objects

# Every case here pastes K2B objects (detector class k -> trainId 11 + k).
paste_objects = functools.partial(_paste_objects, class_table=K2B)


def _box(shape, y0, y1, x0, x1):
    m = np.zeros(shape, dtype=bool)
    m[y0:y1, x0:x1] = True
    return m


def _cand(shape, category_id, full, overlap=None, value=200):
    return {
        "category_id": category_id,
        "full_mask": full,
        "overlap_mask": np.zeros(shape, bool) if overlap is None else overlap,
        "pixels": np.full(shape + (3,), value, dtype=np.uint8),
    }


def _host(shape=(10, 10)):
    image = np.full(shape + (3,), 100, dtype=np.uint8)
    sem = np.zeros(shape, dtype=np.uint8)
    return image, sem


class TestHandMade:
    shape = (10, 10)

    def test_zero_overlap_single_paste(self):
        image, sem = _host()
        host = {
            "category_id": 2,
            "mask": _box(self.shape, 0, 5, 0, 5),
            "amodal_mask": _box(self.shape, 0, 5, 0, 7),
            "segment_id": 7,
        }
        full = _box(self.shape, 2, 8, 2, 8)  # 36 px
        overlap = _box(self.shape, 2, 4, 2, 8)  # 12 px
        res = paste_objects(
            image,
            sem,
            [host],
            [_cand(self.shape, 0, full, overlap)],
            min_visible_pixels=1,
            max_area_fraction=1.0,
        )
        assert res.num_pasted == 1
        np.testing.assert_array_equal(res.image[full & ~overlap], 200)
        np.testing.assert_array_equal(res.image[overlap], 0)
        np.testing.assert_array_equal(res.image[~full], 100)
        np.testing.assert_array_equal(res.zeroed_mask, overlap)
        # The zeroed overlap keeps the object's label (Eq. 10: full mask stays the label).
        np.testing.assert_array_equal(res.sem_seg[full], 11)
        np.testing.assert_array_equal(res.sem_seg[~full], 0)
        assert len(res.objects) == 2
        h, p = res.objects
        assert h["segment_id"] == 7 and h["category_id"] == 2
        np.testing.assert_array_equal(h["mask"], host["mask"] & ~full)
        assert h["mask"].sum() == 25 - 9
        np.testing.assert_array_equal(h["amodal_mask"], host["amodal_mask"])
        assert p["category_id"] == 0
        np.testing.assert_array_equal(p["mask"], full)
        np.testing.assert_array_equal(p["amodal_mask"], full)
        # Inputs are not modified.
        assert (image == 100).all() and (sem == 0).all()

    def test_fully_occluded_host_removed_and_unknown_visible_uses_amodal(self):
        image, sem = _host()
        covered = {
            "category_id": 1,
            "mask": _box(self.shape, 3, 5, 3, 5),
            "amodal_mask": _box(self.shape, 3, 5, 3, 9),
        }
        amodal_only_in = {
            "category_id": 3,
            "mask": None,
            "amodal_mask": _box(self.shape, 4, 6, 4, 6),
        }
        amodal_only_out = {
            "category_id": 4,
            "mask": None,
            "amodal_mask": _box(self.shape, 0, 2, 0, 9),
        }
        full = _box(self.shape, 2, 8, 2, 8)
        res = paste_objects(
            image,
            sem,
            [covered, amodal_only_in, amodal_only_out],
            [_cand(self.shape, 5, full)],
            min_visible_pixels=1,
            max_area_fraction=1.0,
        )
        cats = [o["category_id"] for o in res.objects]
        # 1: visible part fully covered although its amodal mask sticks out -> removed.
        # 3: no visible mask, amodal fully covered -> removed. 4: kept, mask stays None.
        assert cats == [4, 5]
        assert res.objects[0]["mask"] is None

    def test_later_paste_in_front_and_visible_masks(self):
        image, sem = _host()
        a = _box(self.shape, 0, 6, 0, 6)
        b = _box(self.shape, 3, 9, 3, 9)
        ovp_a = _box(self.shape, 4, 6, 4, 6)  # under b anyway
        ovp_b = _box(self.shape, 8, 9, 3, 9)
        res = paste_objects(
            image,
            sem,
            [],
            [_cand(self.shape, 0, a, ovp_a, 50), _cand(self.shape, 6, b, ovp_b, 80)],
            min_visible_pixels=1,
            max_area_fraction=1.0,
        )
        assert res.num_pasted == 2
        pa, pb = res.objects
        np.testing.assert_array_equal(pa["mask"], a & ~b)
        np.testing.assert_array_equal(pa["amodal_mask"], a)
        np.testing.assert_array_equal(pb["mask"], b)
        np.testing.assert_array_equal(res.sem_seg[b], 17)
        np.testing.assert_array_equal(res.sem_seg[a & ~b], 11)
        np.testing.assert_array_equal(res.image[a & ~b], 50)
        np.testing.assert_array_equal(res.image[b & ~ovp_b], 80)
        # a's overlap pixels lie under b, which paints them with its own colours.
        np.testing.assert_array_equal(res.zeroed_mask, ovp_b)

    def test_rejection_rules(self):
        image, sem = _host()
        shape = self.shape
        empty = _cand(shape, 0, np.zeros(shape, bool))
        too_big = _cand(shape, 0, _box(shape, 0, 4, 0, 4))  # 16 px > 0.125 * 100
        res = paste_objects(image, sem, [], [empty, too_big], min_visible_pixels=1)
        assert res.num_pasted == 0 and res.objects == []
        np.testing.assert_array_equal(res.image, image)

        first = _cand(shape, 0, _box(shape, 0, 3, 0, 3))  # 9 px
        hides_first = _cand(shape, 1, _box(shape, 0, 3, 0, 4))  # leaves 0 visible of first
        leaves_few = _cand(shape, 2, _box(shape, 0, 3, 1, 4))  # leaves 3 px of first
        ok = _cand(shape, 3, _box(shape, 5, 8, 5, 8))
        res = paste_objects(
            image,
            sem,
            [],
            [first, hides_first, leaves_few, ok],
            min_visible_pixels=4,
            max_area_fraction=0.2,
        )
        assert [o["category_id"] for o in res.objects] == [0, 3]
        res = paste_objects(
            image,
            sem,
            [],
            [first, hides_first, leaves_few, ok],
            min_visible_pixels=3,
            max_area_fraction=0.2,
        )
        assert [o["category_id"] for o in res.objects] == [0, 2, 3]

        # A candidate smaller than min_visible_pixels is rejected (it could never stay visible).
        tiny = _cand(shape, 4, _box(shape, 8, 9, 0, 3))  # 3 px
        assert paste_objects(image, sem, [], [tiny], min_visible_pixels=4).num_pasted == 0
        assert paste_objects(image, sem, [], [tiny], min_visible_pixels=3).num_pasted == 1

        # The unpasted background must keep min_visible_pixels too.
        almost_all = _cand(shape, 0, ~_box(shape, 0, 1, 0, 4))  # leaves 4 background px
        assert (
            paste_objects(
                image, sem, [], [almost_all], min_visible_pixels=5, max_area_fraction=1.0
            ).num_pasted
            == 0
        )
        assert (
            paste_objects(
                image, sem, [], [almost_all], min_visible_pixels=4, max_area_fraction=1.0
            ).num_pasted
            == 1
        )

    def test_max_objects_stops_consuming(self):
        image, sem = _host()
        consumed = []

        def gen():
            for i in range(5):
                consumed.append(i)
                yield _cand(self.shape, i, _box(self.shape, 2 * i, 2 * i + 1, 0, 2))

        res = paste_objects(image, sem, [], gen(), min_visible_pixels=1, max_objects=2)
        assert res.num_pasted == 2 and consumed == [0, 1]

    @pytest.mark.parametrize("mode", MIX_MODES)
    def test_modes(self, mode):
        image, sem = _host()
        full = _box(self.shape, 2, 6, 2, 6)
        overlap = _box(self.shape, 2, 3, 2, 6)
        res = paste_objects(
            image,
            sem,
            [],
            [_cand(self.shape, 0, full, overlap)],
            mode=mode,
            rng=np.random.RandomState(3),
            min_visible_pixels=1,
            max_area_fraction=1.0,
        )
        (obj,) = res.objects
        excl = full & ~overlap
        np.testing.assert_array_equal(res.image[excl], 0 if mode == "zero_full" else 200)
        if mode == "instance":
            np.testing.assert_array_equal(obj["amodal_mask"], excl)
            np.testing.assert_array_equal(res.image[overlap], 100)
            np.testing.assert_array_equal(res.sem_seg, np.where(excl, 11, 0))
        else:
            np.testing.assert_array_equal(obj["amodal_mask"], full)
            np.testing.assert_array_equal(res.sem_seg, np.where(full, 11, 0))
        expected_zero = {"amodal_zero_overlap": overlap, "zero_full": full}.get(
            mode, np.zeros(self.shape, bool)
        )
        np.testing.assert_array_equal(res.zeroed_mask, expected_zero)
        if mode == "amodal":
            np.testing.assert_array_equal(res.image[overlap], 200)
        if mode == "random_fill":
            expected = np.random.RandomState(3).randint(0, 256, size=(int(overlap.sum()), 3))
            np.testing.assert_array_equal(res.image[overlap], expected)

    def test_visible_ignore_cleared_amodal_ignore_kept_under_footprint(self):
        image, sem = _host()
        full = _box(self.shape, 2, 5, 2, 5)
        ign = {"visible": np.ones(self.shape, bool), "amodal": _box(self.shape, 0, 3, 0, 10)}
        res = paste_objects(
            image, sem, [], [_cand(self.shape, 0, full)], min_visible_pixels=1, ignore_maps=ign
        )
        np.testing.assert_array_equal(res.ignore_maps["visible"], ~full)
        # The host's hidden extent behind the paste is still unknown.
        np.testing.assert_array_equal(res.ignore_maps["amodal"], ign["amodal"])
        assert res.objects[-1]["amodal_exact"]

    def test_pasted_object_has_no_amodal_ignore_host_keeps_it(self):
        from unlock.data.detection_utils import build_amodal_instances

        image, sem = _host()
        host_vis = _box(self.shape, 0, 4, 0, 4)
        host_amo = _box(self.shape, 0, 6, 0, 6)
        host = {"category_id": 1, "mask": host_vis, "amodal_mask": host_amo}
        full = _box(self.shape, 2, 5, 2, 5)
        uncertain = _box(self.shape, 0, 10, 0, 10)
        ign = {"visible": uncertain.copy(), "amodal": uncertain.copy()}
        res = paste_objects(
            image, sem, [host], [_cand(self.shape, 0, full)], min_visible_pixels=1, ignore_maps=ign
        )
        inst = build_amodal_instances(res.objects, res.ignore_maps, self.shape)
        amodal_ignore = inst.gt_amodal_mask_ignore.tensor.numpy()
        visible_ignore = inst.gt_mask_ignore.tensor.numpy()
        # Host: amodal uncertainty stays under the paste (minus its own mask); visible cleared.
        np.testing.assert_array_equal(amodal_ignore[0], uncertain & ~host_amo)
        np.testing.assert_array_equal(visible_ignore[0], uncertain & ~full & ~(host_vis & ~full))
        # Pasted object: its amodal mask is exact, nothing ignored.
        assert not amodal_ignore[1].any()

    def test_bad_inputs(self):
        image, sem = _host()
        with pytest.raises(ValueError, match="mix mode"):
            paste_objects(image, sem, [], [], mode="nope")
        with pytest.raises(ValueError, match="do not match"):
            paste_objects(image, sem, [], [_cand((5, 5), 0, np.ones((5, 5), bool))])
        with pytest.raises(ValueError, match="mix mode"):
            paste_region(np.ones((2, 2), bool), np.zeros((2, 2), bool), "bad")


def _random_scene(rs, shape=(40, 60), n_host=5, n_cand=12):
    """Host objects with disjoint visible masks (painter's order) and random candidates."""
    h, w = shape
    image = rs.randint(1, 256, size=shape + (3,)).astype(np.uint8)
    sem = rs.randint(0, 18, size=shape).astype(np.uint8)
    top = np.zeros(shape, np.int32)
    amodals = []
    for i in range(n_host):
        y0, x0 = rs.randint(0, h - 4), rs.randint(0, w - 4)
        m = _box(shape, y0, y0 + rs.randint(3, 15), x0, x0 + rs.randint(3, 20))
        amodals.append(m)
        top[m] = i + 1
    host = []
    for i, m in enumerate(amodals):
        vis = top == i + 1
        if vis.any():
            unknown = rs.rand() < 0.3
            host.append(
                {
                    "category_id": int(rs.randint(7)),
                    "mask": None if unknown else vis,
                    "amodal_mask": m,
                }
            )
    cands = []
    for _ in range(n_cand):
        y0, x0 = rs.randint(-5, h - 2), rs.randint(-5, w - 2)
        full = _box(
            shape,
            max(y0, 0),
            max(y0 + rs.randint(2, 18), 0),
            max(x0, 0),
            max(x0 + rs.randint(2, 25), 0),
        )
        overlap = full & (rs.rand(*shape) < 0.3)
        pixels = rs.randint(1, 256, size=shape + (3,)).astype(np.uint8)
        cands.append(
            {
                "category_id": int(rs.randint(7)),
                "full_mask": full,
                "overlap_mask": overlap,
                "pixels": pixels,
            }
        )
    return image, sem, host, cands


@pytest.mark.parametrize("mode", MIX_MODES)
def test_random_scene_invariants(mode):
    for seed in range(15):
        rs = np.random.RandomState(seed)
        image, sem, host, cands = _random_scene(rs)
        min_vis = int(rs.choice([1, 5, 25]))
        res = paste_objects(
            image,
            sem,
            host,
            cands,
            mode=mode,
            rng=rs,
            min_visible_pixels=min_vis,
            max_area_fraction=0.125,
        )
        n_host_out = len(res.objects) - res.num_pasted
        pasted = res.objects[n_host_out:]
        fp = res.footprint
        union = np.zeros(sem.shape, np.int32)
        for obj in res.objects:
            vis = obj["mask"] if obj["mask"] is not None else None
            if vis is not None:
                assert vis.any(), "an object without visible pixels survived"
                assert not (vis & ~obj["amodal_mask"]).any(), "visible not inside amodal"
                union += vis
            else:
                assert (obj["amodal_mask"] & ~fp).any()
        assert union.max() <= 1, "visible masks overlap"
        # Host objects: visible masks cut by the footprint, amodal masks untouched.
        for obj in res.objects[:n_host_out]:
            if obj["mask"] is not None:
                assert not (obj["mask"] & fp).any()
            assert any(
                obj["amodal_mask"] is h["amodal_mask"]
                or np.array_equal(obj["amodal_mask"], h["amodal_mask"])
                for h in host
            )
        # Removed host objects are exactly the fully occluded ones.
        kept = sum(
            1
            for h in host
            if ((h["mask"] if h["mask"] is not None else h["amodal_mask"]) & ~fp).any()
        )
        assert kept == n_host_out
        # Pasted objects: enough visible pixels, semantics agree with the visible masks.
        zero_expected = np.zeros(sem.shape, bool)
        for obj in pasted:
            assert obj["mask"].sum() >= min_vis
            assert obj["amodal_mask"].sum() <= 0.125 * sem.size
            assert (res.sem_seg[obj["mask"]] == obj["category_id"] + 11).all()
        assert (res.sem_seg[~fp] == sem[~fp]).all()
        assert (res.image[~fp] == image[~fp]).all()
        if res.num_pasted:
            assert (~fp).sum() >= min_vis
        if mode in ("amodal_zero_overlap", "zero_full"):
            assert (res.image[res.zeroed_mask] == 0).all()
            # Candidates pixels are >= 1, so zeros in the footprint are exactly zeroed pixels.
            np.testing.assert_array_equal((res.image == 0).all(axis=2) & fp, res.zeroed_mask)
        else:
            assert not res.zeroed_mask.any()
        if mode == "amodal_zero_overlap":
            accepted = [
                c
                for c in cands
                if any(np.array_equal(c["full_mask"], o["amodal_mask"]) for o in pasted)
            ]
            for obj in pasted:
                c = next(c for c in accepted if np.array_equal(c["full_mask"], obj["amodal_mask"]))
                zero_expected |= c["overlap_mask"] & obj["mask"]
            np.testing.assert_array_equal(res.zeroed_mask, zero_expected)


class TestPastedSemantics:
    """UNLOCK.ADCL.PASTED_SEMANTICS "source_labels": pixels bring the labels of their own image."""

    shape = (10, 10)

    def _source_labelled_candidate(self):
        full = _box(self.shape, 2, 8, 2, 8)
        overlap = _box(self.shape, 2, 4, 2, 8)
        cand = _cand(self.shape, 0, full, overlap)
        # In its own image the object (class 0 -> trainId 11) was partly labelled as a van (16)
        # and partly uncertain (255).
        semantics = np.full(self.shape, 11, dtype=np.uint8)
        semantics[6:8, 2:8] = 16
        semantics[5, 2:8] = 255
        cand["semantics"] = semantics
        return cand, full, overlap, semantics

    def test_shown_pixels_take_their_source_labels_and_zeroed_ones_are_ignored(self):
        image, sem = _host()
        cand, full, overlap, semantics = self._source_labelled_candidate()
        res = paste_objects(image, sem, [], [cand], min_visible_pixels=1, max_area_fraction=1.0,
                            pasted_semantics="source_labels")  # fmt: skip
        shown = full & ~overlap
        np.testing.assert_array_equal(res.sem_seg[shown], semantics[shown])
        np.testing.assert_array_equal(res.sem_seg[overlap], K2B.ignore_label)
        np.testing.assert_array_equal(res.sem_seg[~full], 0)
        # The instance labels are those of the default: the full amodal mask stays the label.
        (pasted,) = res.objects
        np.testing.assert_array_equal(pasted["amodal_mask"], full)
        np.testing.assert_array_equal(res.image[overlap], 0)

    def test_object_class_is_the_default_and_ignores_source_labels(self):
        image, sem = _host()
        cand, full, _, _ = self._source_labelled_candidate()
        res = paste_objects(image, sem, [], [cand], min_visible_pixels=1, max_area_fraction=1.0)
        np.testing.assert_array_equal(res.sem_seg[full], 11)

    def test_later_pastes_win_with_their_own_labels(self):
        image, sem = _host()
        first, _, _, _ = self._source_labelled_candidate()
        front = _cand(self.shape, 2, _box(self.shape, 6, 9, 0, 4), value=50)
        front["semantics"] = np.full(self.shape, 13, dtype=np.uint8)
        res = paste_objects(image, sem, [], [first, front], min_visible_pixels=1,
                            max_area_fraction=1.0, pasted_semantics="source_labels")  # fmt: skip
        assert res.num_pasted == 2
        np.testing.assert_array_equal(res.sem_seg[6:9, 0:4], 13)
        assert res.sem_seg[7, 5] == 16 and res.sem_seg[4, 5] == 11

    def test_a_candidate_without_source_labels_is_an_error(self):
        image, sem = _host()
        cand = _cand(self.shape, 0, _box(self.shape, 2, 8, 2, 8))
        with pytest.raises(ValueError, match="candidate 0.*'semantics'"):
            paste_objects(image, sem, [], [cand], min_visible_pixels=1, max_area_fraction=1.0,
                          pasted_semantics="source_labels")  # fmt: skip
        with pytest.raises(ValueError, match="pasted semantics 'class'"):
            paste_objects(image, sem, [], [cand], pasted_semantics="class")
