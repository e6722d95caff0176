"""bitget_assets: every Bitget futures order of an account, extracted and kept fresh by Dagster."""

import warnings

# `backfill_policy` is how Dagster runs a partition range in one run; its beta notice is noise for users.
warnings.filterwarnings("ignore", message=r".*backfill_policy.*currently in beta")
