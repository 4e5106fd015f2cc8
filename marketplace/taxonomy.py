"""The fixed vocabularies of the catalogue. Codes are stored; labels are shown.
Changing a code is a data migration, never an edit here."""

from django.db import models


class Emotion(models.TextChoices):
    NEUTRAL = "neutral", "Neutral"
    CALM = "calm", "Calm"
    JOY = "joy", "Joy"
    AMUSEMENT = "amusement", "Amusement"
    SADNESS = "sadness", "Sadness"
    GRIEF = "grief", "Grief"
    ANGER = "anger", "Anger"
    FRUSTRATION = "frustration", "Frustration"
    FEAR = "fear", "Fear"
    ANXIETY = "anxiety", "Anxiety"
    DISGUST = "disgust", "Disgust"
    CONTEMPT = "contempt", "Contempt"
    SURPRISE = "surprise", "Surprise"
    SHAME = "shame", "Shame"
    GUILT = "guilt", "Guilt"
    EMBARRASSMENT = "embarrassment", "Embarrassment"
    PRIDE = "pride", "Pride"
    RELIEF = "relief", "Relief"
    TENDERNESS = "tenderness", "Tenderness"
    CONFUSION = "confusion", "Confusion"


class Authenticity(models.TextChoices):
    GENUINE = "genuine", "Genuine"
    SUPPRESSED = "suppressed", "Suppressed"
    FORCED = "forced", "Forced"
    MASKED = "masked", "Masked"
    EXAGGERATED = "exaggerated", "Exaggerated"


class Annotator(models.TextChoices):
    SELF = "self", "The performer"
    EXPERT = "expert", "An expert annotator"
    AUTOMATIC = "automatic", "Automatic"


class VocalEvent(models.TextChoices):
    LAUGH = "laugh", "Laugh"
    SIGH = "sigh", "Sigh"
    GASP = "gasp", "Gasp"
    SOB = "sob", "Sob"
    TREMOR = "tremor", "Tremor"
    SCREAM = "scream", "Scream"


class Use(models.TextChoices):
    """What a performer may consent to, and what a listing may permit."""

    MODEL_TRAINING = "model_training", "Model training"
    EVALUATION = "evaluation", "Evaluation and benchmarking"
    FINE_TUNING = "fine_tuning", "Fine-tuning"
    SYNTHETIC_GENERATION = "synthetic_generation", "Synthetic voice or likeness generation"
    COMMERCIAL_DEPLOYMENT = "commercial_deployment", "Commercial deployment"
    RESEARCH_ONLY = "research_only", "Research only"


class SensitiveContent(models.TextChoices):
    GRIEF = "grief", "Grief or bereavement"
    TRAUMA = "trauma", "Trauma"
    RAGE = "rage", "Rage or violence"
    DISTRESS = "distress", "Acute distress"
    SELF_HARM = "self_harm", "Self-harm themes"
    SEXUAL = "sexual", "Sexual content"
    MEDICAL = "medical", "Health or medical"


# Buyers' metrics (the royalties issue reports usage with these).
class Metric(models.TextChoices):
    TRAINING_RUN = "training_run", "Training run"
    FINE_TUNE_RUN = "fine_tune_run", "Fine-tune run"
    EVALUATION_RUN = "evaluation_run", "Evaluation run"
    INFERENCE_CALLS = "inference_calls", "Inference calls"
    DEPLOYMENT = "deployment", "Deployment"
    DOWNSTREAM_REVENUE = "downstream_revenue", "Downstream revenue"


# FACS action units (Ekman & Friesen): the main facial ones, AU1–AU28 and AU43/45/46.
FACS_ACTION_UNITS = {
    1: "Inner brow raiser",
    2: "Outer brow raiser",
    4: "Brow lowerer",
    5: "Upper lid raiser",
    6: "Cheek raiser",
    7: "Lid tightener",
    9: "Nose wrinkler",
    10: "Upper lip raiser",
    11: "Nasolabial deepener",
    12: "Lip corner puller",
    13: "Cheek puffer",
    14: "Dimpler",
    15: "Lip corner depressor",
    16: "Lower lip depressor",
    17: "Chin raiser",
    18: "Lip puckerer",
    20: "Lip stretcher",
    22: "Lip funneler",
    23: "Lip tightener",
    24: "Lip pressor",
    25: "Lips part",
    26: "Jaw drop",
    27: "Mouth stretch",
    28: "Lip suck",
    43: "Eyes closed",
    45: "Blink",
    46: "Wink",
}
