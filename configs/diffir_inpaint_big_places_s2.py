# DiffIR stage 2, the big inpainting model on Places2-Standard
# (official DiffIR-inpainting/configs/training/DiffIRbigdataS2-place2.yaml with
# generator/DiffIRbigS2-place2.yaml, generatorT/DiffIRbigS1-place2.yaml,
# train_place256_bigLdataS2.sh: 8 GPUs x 15 images). Needs the big stage-1 checkpoint:
#   --cfg-options model.stage1_checkpoint=work_dirs/diffir_inpaint_big_places_s1/iter_1000000.pth
_base_ = ['./diffir_inpaint_places_s2.py']

experiment_name = 'diffir_inpaint_big_places_s2'
work_dir = f'./work_dirs/{experiment_name}'

model = dict(
    generator=_base_.big_generator,
    stage1_checkpoint='work_dirs/diffir_inpaint_big_places_s1/iter_1000000.pth')
train_dataloader = dict(batch_size=15)
auto_scale_lr = dict(enable=False, base_batch_size=120)
