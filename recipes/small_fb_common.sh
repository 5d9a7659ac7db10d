# Shared by recipes/bundled_cpu.sh and recipes/continue_cpu.sh (sourced, not run): the bundled model's data,
# held-out splits and training settings. Needs DATA and SYNTH set.
# Training sources. Held out: cathy test (10% of prompt ids) and dev (the next 10%, for tuning decoder
# weights), FSDD speaker theo, 100 TTS sentences.
SMALL_FB_DATA=(
    --data "$DATA/cathy:group=prompt_id,eval=0.1,dev=0.1,repeat=2"
    --data "$DATA/fsdd:group=speaker,hold_out=theo"
    --data "$DATA/keywords:role=train,limit=500"
    --data "$SYNTH/train:name=synth,role=train"
    --data "$SYNTH/eval:name=synth_eval,role=eval"
)
# Batch, schedule and augmentation. bf16 autocast: 1.7x the fp32 step rate on this CPU (AMX).
SMALL_FB_TRAINING=(
    --batch-size 8 --eval-batch-size 16 --scheduler time-linear --epochs 200
    --eval-steps 1500 --logging-steps 50 --save-total-limit 2 --best-metric none
    --max-seconds 10 --trim-silence --mask-time-prob 0.04 --threads 2 --precision bf16
)
# The held-out parts alone, as the evaluation rebuilds them (same specs, same seed).
SMALL_FB_HELD_OUT=(
    --data "$DATA/cathy:group=prompt_id,eval=0.1,dev=0.1"
    --data "$DATA/fsdd:group=speaker,hold_out=theo"
    --data "$SYNTH/eval:name=synth_eval,role=eval"
)
