"""Training a selector model from its dense teacher: the loss terms and the student's start."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from sparsespikformer.model import create_model
from sparsespikformer.model.data.base import DatasetInfo, InMemoryDataset
from sparsespikformer.model.nn.token_selector import token_selectors_of
from sparsespikformer.model.sparse_presets import dense_counterpart
from sparsespikformer.model.training.loop import TrainConfig, soft_targets
from sparsespikformer.model.training.selector_training import (
    SelectorLoss,
    SelectorLossConfig,
    distillation_loss,
    init_student_from_teacher,
    keep_ratio_loss,
    train_selector,
)

TINY = dict(img_size=8, embed_dim=16, num_heads=2, depth=3, timesteps=2)   # 16 tokens


def _student(scorer="learned", keep_ratio=0.5, seed=0):
    torch.manual_seed(seed)
    return create_model("sparsespikformer_4_64_digits", scorer=scorer, keep_ratio=keep_ratio,
                        selector_blocks=(1, 2), **TINY)


def _teacher(seed=1):
    torch.manual_seed(seed)
    return create_model("spikformer_4_64_digits", **TINY)


def _tiny_digits_like(split: str, samples: int = 32) -> InMemoryDataset:
    generator = torch.Generator().manual_seed(0 if split == "train" else 1)
    labels = torch.arange(samples) % 10
    images = torch.rand(samples, 1, 8, 8, generator=generator) * 0.3
    for i, label in enumerate(labels.tolist()):          # a bright bar whose row is the class
        images[i, 0, label % 8, :] = 1.0
    info = DatasetInfo(name="tiny", split=split, num_classes=10, input_shape=(1, 8, 8),
                       class_names=tuple(str(d) for d in range(10)), source="tiny")
    return InMemoryDataset(images, labels, info)


def test_student_starts_as_the_teacher_with_only_selectors_new():
    teacher, student = _teacher(), _student()
    init_student_from_teacher(student, teacher.state_dict())
    student_state = student.state_dict()
    for name, value in teacher.state_dict().items():
        assert torch.equal(student_state[name], value), name
    new = sorted(set(student_state) - set(teacher.state_dict()))
    assert new and all(name.startswith("token_selectors.") for name in new)
    assert set(dense_counterpart(student).state_dict()) == set(teacher.state_dict())


def test_teacher_of_another_shape_is_a_value_error():
    other = create_model("spikformer_4_64_digits", **{**TINY, "embed_dim": 32})
    with pytest.raises(ValueError, match="teacher"):
        init_student_from_teacher(_student(), other.state_dict())


def test_keep_ratio_loss_is_the_mean_of_squared_gaps():
    student = _student(keep_ratio=0.5)
    first, second = token_selectors_of(student)
    first.last_kept_fraction = torch.tensor([0.75, 0.25])     # targets 0.5 and 0.25
    second.last_kept_fraction = torch.tensor([0.25, 0.5])
    by_hand = ((0.25 ** 2 + 0.25 ** 2) / 2 + (0.0 + 0.25 ** 2) / 2) / 2
    assert float(keep_ratio_loss(student)) == pytest.approx(by_hand)


def test_distillation_loss_is_kl_of_teacher_to_student():
    student_logits = torch.tensor([[1.0, 0.0, -1.0], [0.5, 0.5, 2.0]])
    teacher_logits = torch.tensor([[0.0, 2.0, 0.0], [1.0, -1.0, 0.0]])
    by_hand = 0.0
    for s_row, t_row in zip(student_logits.tolist(), teacher_logits.tolist()):
        zs, zt = sum(math.exp(v) for v in s_row), sum(math.exp(v) for v in t_row)
        for s, t in zip(s_row, t_row):
            p_t, p_s = math.exp(t) / zt, math.exp(s) / zs
            by_hand += p_t * math.log(p_t / p_s)
    assert float(distillation_loss(student_logits, teacher_logits)) == pytest.approx(by_hand / 2)


def test_selector_loss_adds_weighted_ratio_and_kl_terms():
    torch.manual_seed(0)
    teacher, student = _teacher(), _student()
    init_student_from_teacher(student, teacher.state_dict())
    images, labels = _tiny_digits_like("train", 8).get_batch(torch.arange(8))
    targets = soft_targets(labels, 10, 0.1)
    student.train()
    logits = student(images)
    loss = SelectorLoss(teacher, SelectorLossConfig())(student, images, targets, logits)
    with torch.no_grad():
        teacher_logits = teacher(images)
    ce = -(targets * F.log_softmax(logits, -1)).sum(-1).mean()
    ratio = sum(((s.last_kept_fraction - 0.5 ** s.ordinal) ** 2).mean()
                for s in token_selectors_of(student)) / 2
    kl = (F.softmax(teacher_logits, -1) * (F.log_softmax(teacher_logits, -1)
                                            - F.log_softmax(logits, -1))).sum(-1).mean()
    assert loss.item() == pytest.approx((ce + 2.0 * ratio + 0.5 * kl).item(), rel=1e-5)


@pytest.mark.parametrize("scorer", ["learned", "firing_rate", "random"])
def test_each_scorer_trains_from_the_teacher_and_selects_at_inference(tmp_path, scorer):
    teacher, student = _teacher(), _student(scorer=scorer)
    config = TrainConfig(epochs=1, batch_size=16, lr=1e-3, warmup_epochs=0, eval_batch_size=32)
    test_set = _tiny_digits_like("test", 20)
    history = train_selector(student, teacher, _tiny_digits_like("train"), test_set, config,
                             tmp_path, progress=False)
    assert len(history) == 1
    # the recorded accuracy is the trained student's on the test set, recounted here (one
    # batch of 20, as evaluation ran it: the random scorer's draws depend on the batch)
    student.eval()
    with torch.no_grad():
        images, labels = test_set.get_batch(torch.arange(20))
        predictions = student(images).argmax(dim=1).tolist()
    right = sum(p == y for p, y in zip(predictions, labels.tolist(), strict=True))
    assert history["test_accuracy"].iloc[0] == right / 20
    with torch.no_grad():
        student(_tiny_digits_like("test", 4).get_batch(torch.arange(4))[0])
    assert [s.last_kept_indices.shape[1] for s in token_selectors_of(student)] == [8, 4]
    if scorer == "learned":      # the selector MLP was trained
        start = _student(scorer=scorer)
        assert not torch.equal(start.token_selectors["1"].mlp[0].weight,
                               student.token_selectors["1"].mlp[0].weight)
