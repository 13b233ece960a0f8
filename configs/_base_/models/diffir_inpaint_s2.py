# DiffIR inpainting, stage 2 (official DiffIRS2-{celeba,place2}.yaml, trainer defaultS2): CPEN_S2 +
# IPR diffusion + DIRformer, taught by the frozen stage-1 network (generatorT), jointly from step 0,
# with the stage-1 LaMa losses + L_diff = L1(z_S2, z_S1) (losses.kd, weight 1).
# Needs the stage-1 checkpoint (ours or the official one):
#   --cfg-options model.stage1_checkpoint=work_dirs/<stage-1 run>/iter_N.pth
_base_ = ['./diffir_inpaint_s1.py']

generator = dict(
    _base_.generator,
    type='DiffIRS2Net', n_denoise_res=1, timesteps=4, linear_start=0.1, linear_end=0.99)

model = dict(
    type='DiffIRInpaintS2',
    generator=generator,
    prior_loss=dict(type='L1Loss', loss_weight=1.0, reduction='mean'),
    kd_tau=0.15,  # only for the logged KL (kd_kl)
    stage1_checkpoint='work_dirs/diffir_inpaint_s1/iter_1000000.pth',
    train_cfg=dict(disc_regenerate=True, noise_seed=2023))
