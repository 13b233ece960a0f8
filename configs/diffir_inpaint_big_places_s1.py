# DiffIR stage 1, the big inpainting model on Places2-Standard
# (official DiffIR-inpainting/configs/training/DiffIRbigdataS1-place2.yaml with
# generator/DiffIRbigS1-place2.yaml, train_place256_bigLdataS1.sh: location=places_standard,
# 8 GPUs x 15 images). Same recipe as diffir_inpaint_places_s1.py; the generator has
# num_blocks [1, 1, 1, 20] and n_encoder_res 8.
_base_ = ['./diffir_inpaint_places_s1.py']

experiment_name = 'diffir_inpaint_big_places_s1'
work_dir = f'./work_dirs/{experiment_name}'

model = dict(generator=_base_.big_generator)
train_dataloader = dict(batch_size=15)
auto_scale_lr = dict(enable=False, base_batch_size=120)
