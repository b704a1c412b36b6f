"""Wrong solutions of chapter 11: pretraining and fine-tuning (11.1, 11.2)."""

from __future__ import annotations

from lecture_utils import model as M

from ._catalogue import wrong


@wrong("11.1", "to_vocabulary", "characters outside the vocabulary remain")
def vocabulary_unchanged_text():
    def to_vocabulary(text, chars):
        return text  # "the tokenizer will cope": it raises on the first unknown character

    return (to_vocabulary,)


@wrong("11.1", "to_vocabulary", "replaced instead of removed")
def vocabulary_replaces_with_space():
    def to_vocabulary(text, chars):
        return "".join(c if c in chars else " " for c in text)

    return (to_vocabulary,)


@wrong("11.1", "to_vocabulary", "newlines were removed")
def vocabulary_printable_only():
    def to_vocabulary(text, chars):
        return "".join(c for c in text if c.isprintable() and c in chars)

    return (to_vocabulary,)


@wrong("11.1", "to_vocabulary", "return a string")
def vocabulary_returns_list():
    def to_vocabulary(text, chars):
        return [c for c in text if c in chars]

    return (to_vocabulary,)


@wrong("11.1", "to_vocabulary", "case of letters changed")
def vocabulary_lowercased():
    def to_vocabulary(text, chars):
        return "".join(c for c in text.lower() if c in chars)

    return (to_vocabulary,)


@wrong("11.2", "copy_for_finetuning", "the pretrained model itself")
def finetune_the_original():
    def copy_for_finetuning(pretrained):
        return pretrained.train()

    return (copy_for_finetuning,)


@wrong("11.2", "copy_for_finetuning", "shallow")
def finetune_shallow_copy():
    import copy

    def copy_for_finetuning(pretrained):
        return copy.copy(pretrained).train()

    return (copy_for_finetuning,)


@wrong("11.2", "copy_for_finetuning", "training from scratch")
def finetune_fresh_model():
    def copy_for_finetuning(pretrained):
        return M.GPT(pretrained.config).to(next(pretrained.parameters()).device)

    return (copy_for_finetuning,)


@wrong("11.2", "copy_for_finetuning", "eval mode")
def finetune_copy_in_eval_mode():
    import copy

    def copy_for_finetuning(pretrained):
        return copy.deepcopy(pretrained)

    return (copy_for_finetuning,)


@wrong("11.2", "copy_for_finetuning", "leave it as it was")
def finetune_switches_original_to_train():
    import copy

    def copy_for_finetuning(pretrained):
        pretrained.train()
        return copy.deepcopy(pretrained)

    return (copy_for_finetuning,)
