"""Dynamics of the HH model: equilibria, linear stability, Hopf points, limit cycles, f-I curves.

Everything here works on the full 4-D model and is differentiable where it returns numbers
(implicit-function-theorem gradients through Optimistix root finds).
"""

from ._continuation import EquilibriumBranch as EquilibriumBranch
from ._continuation import equilibrium_branch as equilibrium_branch
from ._continuation import hopf_current as hopf_current
from ._continuation import hopf_points as hopf_points
from ._fixed_points import equilibria as equilibria
from ._fixed_points import equilibrium_current as equilibrium_current
from ._jacobian import CLASSES as CLASSES
from ._jacobian import STATE_ORDER as STATE_ORDER
from ._jacobian import Stability as Stability
from ._jacobian import classify as classify
from ._jacobian import eigenvalues as eigenvalues
from ._jacobian import from_vector as from_vector
from ._jacobian import jacobian as jacobian
from ._jacobian import leading_pair_real_part as leading_pair_real_part
from ._jacobian import stability as stability
from ._jacobian import to_vector as to_vector
from ._cycles import CycleBranch as CycleBranch
from ._cycles import LimitCycle as LimitCycle
from ._cycles import cycle_branch as cycle_branch
from ._cycles import cycle_guess as cycle_guess
from ._cycles import cycle_path as cycle_path
from ._cycles import flow as flow
from ._cycles import limit_cycle as limit_cycle
from ._fi import AbstractStart as AbstractStart
from ._fi import FICurve as FICurve
from ._fi import FromEquilibrium as FromEquilibrium
from ._fi import FromHolding as FromHolding
from ._fi import FromSpiking as FromSpiking
from ._fi import fi_curve as fi_curve
from ._phase_plane import PhasePlane as PhasePlane
from ._phase_plane import phase_plane as phase_plane
