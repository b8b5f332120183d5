"""`ccas-bot train` and `ccas-bot score-classifier`: build and measure the message classifier.

`train` generates fictional examples (parsers/training_data.py), trains the `textcat`
component of the pipeline from parsers/nlp.py with a fixed seed, scores it on a
held-out fifth of the generated examples and saves the pipeline. The default
output is parsers/model/, the folder that ships in the package.

`score-classifier` runs a saved pipeline over a labelled corpus (NNN-slug.eml with
NNN-slug.json beside it) and prints accuracy and confusions, and how the safeguarding
rule screen does on the same text. It only measures: nothing from the corpus goes
into training.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

HELD_OUT_FRACTION = 0.2
# Share of examples that keep their whole body, as when the reader finds no new text.
FULL_BODY_SHARE = 0.2
DEFAULT_EXAMPLES = 6000
DEFAULT_EPOCHS = 8


@dataclass
class HeldOutScores:
    """Accuracy and per-category F1 on generated examples kept out of training."""

    accuracy: float
    category_f1: dict[str, float] = field(default_factory=dict)


@dataclass
class TrainingReport:
    """Outcome of one training run: the saved folder, its size, the time taken and the held-out scores."""

    output: Path
    examples: int
    seed: int
    seconds: float
    scores: HeldOutScores
    size_bytes: int

    def lines(self) -> list[str]:
        lines = [
            f"trained on {self.examples} generated examples (seed {self.seed}) in {self.seconds:.1f} s",
            f"held-out category accuracy: {self.scores.accuracy:.3f}",
        ]
        lines += [f"  {label:<24} F1 {score:.3f}" for label, score in self.scores.category_f1.items()]
        lines.append(f"saved to {self.output} ({self.size_bytes / 1e6:.1f} MB)")
        return lines


def register(subparsers) -> None:
    train = subparsers.add_parser("train", help="generate training data, train the classifier and save it")
    train.add_argument("--examples", type=int, default=DEFAULT_EXAMPLES,
                       help=f"number of generated examples, a fifth held out for scoring (default {DEFAULT_EXAMPLES})")
    train.add_argument("--seed", type=int, default=0, help="seed for the generator and the training (default 0)")
    train.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS,
                       help=f"passes over the training examples (default {DEFAULT_EPOCHS})")
    train.add_argument("--architecture", choices=["bow", "ensemble"], default="bow",
                       help="category classifier: bag of words, or bag of words stacked with a tok2vec model (default bow)")
    train.add_argument("--output", type=Path, default=None,
                       help="folder to save the pipeline in (default: the packaged parsers/model)")
    train.set_defaults(handler=_train)

    score = subparsers.add_parser("score-classifier",
                                  help="score the saved classifier on a labelled corpus, without training on it")
    score.add_argument("corpus", type=Path, help="corpus folder holding emails/*.eml and their *.json labels")
    score.add_argument("--model", type=Path, default=None, help="pipeline folder (default: the packaged model)")
    score.add_argument("--json", action="store_true", help="print the scores as JSON")
    score.set_defaults(handler=_score)


def _train(args) -> int:
    from parsers.nlp import MODEL_DIR

    if args.examples < 50:
        print(f"ccas-bot: --examples must be at least 50, got {args.examples}", file=sys.stderr)
        return 2
    report = train_pipeline(args.examples, seed=args.seed, output=args.output or MODEL_DIR,
                            epochs=args.epochs, architecture=args.architecture)
    for line in report.lines():
        print(line)
    return 0


def train_pipeline(count: int, *, seed: int = 0, output: Path, epochs: int = DEFAULT_EPOCHS,
                   architecture: str = "bow") -> TrainingReport:
    """Generate `count` examples, train on four fifths, score on the rest and save to `output`."""
    from spacy.training import Example
    from spacy.util import fix_random_seed, minibatch

    from parsers.nlp import CLASSIFIER, build_pipeline, normalise_for_classifier
    from parsers.training_data import CATEGORIES, generate_examples

    started = time.perf_counter()
    fix_random_seed(seed)
    generated = generate_examples(count, seed=seed)
    held_out_count = max(1, int(len(generated) * HELD_OUT_FRACTION))
    training, held_out = generated[held_out_count:], generated[:held_out_count]

    nlp = build_pipeline(architecture)
    textcat = nlp.get_pipe(CLASSIFIER)
    view_rng = random.Random(seed)
    examples = [
        Example.from_dict(nlp.make_doc(normalise_for_classifier(reader_text(example, view_rng))),
                          {"cats": {label: float(label == example.category) for label in CATEGORIES}})
        for example in training
    ]
    textcat.initialize(lambda: examples[:200], nlp=nlp, labels=list(CATEGORIES))
    optimizer = nlp.create_optimizer()

    order = list(range(len(training)))
    shuffler = random.Random(seed)
    for _ in range(epochs):
        shuffler.shuffle(order)
        for batch in minibatch(order, size=32):
            textcat.update([examples[index] for index in batch], sgd=optimizer, drop=0.1)

    nlp.meta.update({
        "name": "ccas_triage",
        "version": "1.0.0",
        "description": "CCAS inbox triage: identifier and EHCP patterns and message categories. "
                       "Trained only on generated fictional examples.",
        "ccas_training": {"examples": count, "seed": seed, "epochs": epochs, "architecture": architecture},
    })
    scores = score_held_out(nlp, held_out, random.Random(seed + 1))
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    nlp.to_disk(output)

    size = sum(path.stat().st_size for path in output.rglob("*") if path.is_file())
    return TrainingReport(output=output, examples=count, seed=seed, seconds=time.perf_counter() - started,
                          scores=scores, size_bytes=size)


def reader_text(example, rng: random.Random) -> str:
    """Return the text the classifier gets at run time for a generated example.

    The message reader gives the subject plus the new text with the signature, mobile
    sign-off and disclaimers cut (parsers.quotes.split_reply). Training on whole bodies
    would teach the model cues, such as a signature block, that run-time text lacks.
    """
    from parsers.nlp import classifier_text
    from parsers.quotes import split_reply

    if rng.random() < FULL_BODY_SHARE:
        return example.text
    new_text = split_reply(example.body, example.subject).new_text
    return classifier_text(example.subject, new_text or example.body)


def score_held_out(nlp, held_out, rng: random.Random) -> HeldOutScores:
    """Score the trained classifier on generated examples it was not trained on."""
    from parsers.nlp import category_scores
    from parsers.training_data import CATEGORIES

    confusion: Counter[tuple[str, str]] = Counter()
    for example in held_out:
        scores = category_scores(reader_text(example, rng), nlp)
        confusion[(example.category, max(scores, key=scores.get))] += 1

    correct = sum(count for (expected, predicted), count in confusion.items() if expected == predicted)
    return HeldOutScores(accuracy=correct / max(1, len(held_out)),
                         category_f1={label: _f1(confusion, label) for label in CATEGORIES})


def _f1(confusion: Counter[tuple[str, str]], label: str) -> float:
    true_positives = confusion[(label, label)]
    predicted = sum(count for (_, guess), count in confusion.items() if guess == label)
    actual = sum(count for (truth, _), count in confusion.items() if truth == label)
    if not predicted or not actual or not true_positives:
        return 0.0
    precision, recall = true_positives / predicted, true_positives / actual
    return 2 * precision * recall / (precision + recall)


# ---------------------------------------------------------------------------
# Scoring a labelled corpus


def _score(args) -> int:
    emails = args.corpus / "emails"
    if not emails.is_dir():
        print(f"ccas-bot: {emails} not found; expected a corpus folder with emails/*.eml", file=sys.stderr)
        return 2
    result = score_corpus(emails, model=args.model)
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
    else:
        for line in _corpus_lines(result):
            print(line)
    return 0


def score_corpus(emails: Path, *, model: Path | None = None) -> dict:
    """Classify every labelled message whose category is a classifier label; return the scores.

    The text is the subject plus the sender's new text (the whole body when the reader
    found no new text). The `urgent` label of every message, whatever its category, is
    compared with the rule screen in parsers/safeguarding.py on the same text.
    """
    from parsers.mime import parse_message
    from parsers.nlp import category_scores, classifier_text, load_pipeline
    from parsers.safeguarding import screen_for_risk
    from parsers.training_data import CATEGORIES

    nlp = load_pipeline(model)
    confusion: Counter[tuple[str, str]] = Counter()
    urgent_rules: Counter[tuple[bool, bool]] = Counter()
    misses: list[dict] = []
    skipped = 0
    for label_path in sorted(emails.glob("*.json")):
        label = json.loads(label_path.read_text(encoding="utf-8"))
        message_path = label_path.with_suffix(".eml")
        if not message_path.is_file():
            continue
        message = parse_message(message_path.read_bytes())
        text = classifier_text(message.subject, message.new_text or message.body)

        urgent_rules[(bool(label.get("urgent")), bool(screen_for_risk(text)))] += 1

        if label.get("category") not in CATEGORIES:
            skipped += 1
            continue
        scores = category_scores(text, nlp)
        predicted = max(scores, key=scores.get)
        confusion[(label["category"], predicted)] += 1
        if predicted != label["category"]:
            misses.append({"file": message_path.name, "expected": label["category"], "predicted": predicted,
                           "score": round(scores[predicted], 3)})

    scored = sum(confusion.values())
    correct = sum(count for (expected, predicted), count in confusion.items() if expected == predicted)
    return {
        "scored": scored,
        "skipped_other_categories": skipped,
        "accuracy": correct / scored if scored else 0.0,
        "per_category": {label: {"count": sum(c for (truth, _), c in confusion.items() if truth == label),
                                 "correct": confusion[(label, label)], "f1": round(_f1(confusion, label), 3)}
                         for label in CATEGORIES},
        "confusions": sorted(([truth, guess, count] for (truth, guess), count in confusion.items()
                              if truth != guess), key=lambda row: -row[2]),
        "misses": misses,
        "urgent_rules": _binary_counts(urgent_rules),
    }


def _binary_counts(counts: Counter[tuple[bool, bool]]) -> dict[str, int]:
    return {"true_positive": counts[(True, True)], "false_positive": counts[(False, True)],
            "false_negative": counts[(True, False)], "true_negative": counts[(False, False)]}


def _corpus_lines(result: dict) -> list[str]:
    lines = [f"category accuracy: {result['accuracy']:.3f} on {result['scored']} messages "
             f"({result['skipped_other_categories']} in categories the classifier does not score)"]
    for label, row in result["per_category"].items():
        lines.append(f"  {label:<24} {row['correct']:>3}/{row['count']:<3} F1 {row['f1']:.3f}")
    lines.append("confusions (expected -> predicted):")
    lines += [f"  {truth} -> {guess}: {count}" for truth, guess, count in result["confusions"]]
    counts = result["urgent_rules"]
    lines.append("urgent by the rule screen: " + ", ".join(f"{key} {value}" for key, value in counts.items()))
    return lines


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bot.train")
    register(parser.add_subparsers(required=True, metavar="COMMAND"))
    parsed = parser.parse_args()
    sys.exit(parsed.handler(parsed))
